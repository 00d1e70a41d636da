//! Rolling upgrades over real TCP: clients generated from `v1.tidl` call servers generated from
//! `v2.tidl` and the other way round. Every safe change decodes to the values the rules promise
//! (defaults filled, unknown fields skipped, unknown variants seen as `Unknown`); every change
//! the two sides cannot bridge fails with `FailedPrecondition` naming the method, never with a
//! wrong value; and a refused method leaves the others on the connection working.

use std::sync::{Arc, Mutex};
use tidl_evolution_tests::{v1, v2};
use tidl_runtime::{Client, Code, Context, Error, Server, Service};

/// What a server's handlers received, as `Debug` text, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, value: &impl std::fmt::Debug) {
    log.lock().expect("log").push(format!("{value:?}"));
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().expect("log"))
}

/// Serves `service` on a 2-worker runtime of its own, in a thread of its own; its address.
fn serve(service: impl Service) -> String {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let server = Server::builder().register(service).build();
            let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
            addr_tx.send(addr.to_string()).expect("report the address");
            std::future::pending::<()>().await;
        });
    });
    addr_rx.recv().expect("server address")
}

struct Old(Log);

impl v1::evo::Users for Old {
    async fn create(&self, _: Context, new: v1::evo::NewUser) -> Result<v1::evo::User, Error> {
        record(&self.0, &new);
        Ok(v1::evo::User { id: 1, name: new.name })
    }
    async fn profile(&self, _: Context, p: v1::evo::Profile) -> Result<String, Error> {
        record(&self.0, &p);
        Ok(format!("{}/{}", p.bio, p.legacy))
    }
    async fn count(&self, _: Context, c: v1::evo::Count) -> Result<u64, Error> {
        Ok(u64::from(c.n))
    }
    async fn paint(&self, _: Context, n: u32) -> Result<v1::evo::Color, Error> {
        Ok(if n == 0 { v1::evo::Color::Red } else { v1::evo::Color::Green(5) })
    }
    async fn measure(&self, _: Context, s: v1::evo::Shape) -> Result<u32, Error> {
        record(&self.0, &s);
        Ok(match s {
            v1::evo::Shape::Circle(r) => r,
            v1::evo::Shape::Square(a) => a * 4,
        })
    }
    async fn retype(&self, _: Context, r: v1::evo::Retype) -> Result<u32, Error> {
        record(&self.0, &r);
        Ok(r.value)
    }
    async fn strict(&self, _: Context, s: v1::evo::Strict) -> Result<u32, Error> {
        record(&self.0, &s);
        Ok(s.a)
    }
    async fn plot(&self, _: Context, p: v1::evo::Point) -> Result<i32, Error> {
        record(&self.0, &p);
        Ok(p.x + p.y)
    }
}

struct New(Log);

impl v2::evo::Users for New {
    async fn create(&self, _: Context, new: v2::evo::NewUser) -> Result<v2::evo::User, Error> {
        record(&self.0, &new);
        Ok(v2::evo::User {
            id: 2,
            display_name: new.name,
            email: "ann@example.com".into(),
            tags: vec!["admin".into()],
            nickname: new.referrer,
        })
    }
    async fn profile(&self, _: Context, p: v2::evo::Profile) -> Result<String, Error> {
        record(&self.0, &p);
        Ok(p.bio)
    }
    async fn count(&self, _: Context, c: v2::evo::Count) -> Result<u64, Error> {
        record(&self.0, &c);
        Ok(c.n)
    }
    async fn paint(&self, _: Context, n: u32) -> Result<v2::evo::Color, Error> {
        Ok(match n {
            0 => v2::evo::Color::Red,
            1 => v2::evo::Color::Green(5),
            _ => v2::evo::Color::Blue { shade: 9 },
        })
    }
    async fn measure(&self, _: Context, s: v2::evo::Shape) -> Result<u32, Error> {
        record(&self.0, &s);
        Ok(match s {
            v2::evo::Shape::Circle(r) => r,
            v2::evo::Shape::Square(a) => a * 4,
            v2::evo::Shape::Triangle(a, b, c) => a + b + c,
        })
    }
    async fn retype(&self, _: Context, r: v2::evo::Retype) -> Result<u32, Error> {
        record(&self.0, &r);
        Ok(0)
    }
    async fn strict(&self, _: Context, s: v2::evo::Strict) -> Result<u32, Error> {
        record(&self.0, &s);
        Ok(s.a + s.b)
    }
    async fn plot(&self, _: Context, p: v2::evo::Point) -> Result<i32, Error> {
        record(&self.0, &p);
        Ok(p.x + p.y + p.z)
    }
    async fn ping(&self, _: Context, (): ()) -> Result<String, Error> {
        Ok("pong".into())
    }
}

/// Asserts that `result` is a `FailedPrecondition` naming `method` and pointing to `tidl compat`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, method: &str, why: &str) {
    let err = result.expect_err("the call must be refused, not answered");
    let Error::Status(status) = err else { panic!("expected a status, got {err:?}") };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    let message = status.message();
    assert!(message.contains(&format!("`evo.Users.{method}`")), "{message}");
    assert!(message.contains("incompatible schemas"), "{message}");
    assert!(message.contains(why), "{message}");
    assert!(message.contains("tidl compat"), "{message}");
}

#[tokio::test]
async fn an_old_client_calls_a_new_server() {
    use v1::evo::UsersClientExt;
    let log: Log = Log::default();
    let client = Client::dial(serve(v2::evo::UsersServer::new(New(log.clone())))).await.expect("dial");
    let users = client.users();

    // The new server reads the old request with its new optional field empty; the old client
    // reads the new reply without the fields it does not know.
    let user = users.create(v1::evo::NewUser { name: "ann".into() }).await.expect("create");
    assert_eq!(user, v1::evo::User { id: 2, name: "ann".into() });
    assert_eq!(taken(&log), [r#"NewUser { name: "ann", referrer: None }"#]);

    // A field the new schema dropped is skipped.
    let profile = v1::evo::Profile { bio: "hi".into(), legacy: "kept by v1".into() };
    assert_eq!(users.profile(profile).await.expect("profile"), "hi");
    assert_eq!(taken(&log), [r#"Profile { bio: "hi" }"#]);

    // A widened integer reads every narrower value.
    assert_eq!(users.count(v1::evo::Count { n: u32::MAX }).await.expect("count"), u64::from(u32::MAX));
    assert_eq!(taken(&log), [format!("Count {{ n: {} }}", u32::MAX)]);

    // A variant added to an open enum arrives as `Unknown`, the known ones as themselves.
    assert_eq!(users.paint(1).await.expect("paint"), v1::evo::Color::Green(5));
    assert_eq!(users.paint(2).await.expect("paint"), v1::evo::Color::Unknown(2));

    // The new server knows every variant the old client may send of the closed enum.
    assert_eq!(users.measure(v1::evo::Shape::Square(3)).await.expect("measure"), 12);
    assert_eq!(taken(&log), ["Square(3)"]);

    // Breaking for this order: refused, and the handler never ran.
    assert_refused(
        users.retype(v1::evo::Retype { value: 7 }).await,
        "retype",
        "the client sends u32, the server reads string",
    );
    assert_refused(users.strict(v1::evo::Strict { a: 1 }).await, "strict", "field 2 has no default on the server");
    assert_refused(users.plot(v1::evo::Point { x: 1, y: 2 }).await, "plot", "frozen struct");
    // A refusal is remembered for the connection: the second call is refused too.
    assert_refused(users.retype(v1::evo::Retype { value: 8 }).await, "retype", "string");
    assert_eq!(taken(&log), Vec::<String>::new(), "no refused call reached a handler");

    // The other methods keep working on the same connection.
    let user = users.create(v1::evo::NewUser { name: "bob".into() }).await.expect("create after refusals");
    assert_eq!(user.name, "bob");
}

#[tokio::test]
async fn a_new_client_calls_an_old_server() {
    use v2::evo::UsersClientExt;
    let log: Log = Log::default();
    let client = Client::dial(serve(v1::evo::UsersServer::new(Old(log.clone())))).await.expect("dial");
    let users = client.users();

    // The old server skips the new field; the new client fills the defaults of the fields the
    // old server did not send.
    let user =
        users.create(v2::evo::NewUser { name: "ann".into(), referrer: Some("bob".into()) }).await.expect("create");
    assert_eq!(
        user,
        v2::evo::User {
            id: 1,
            display_name: "ann".into(),
            email: "unknown@example.com".into(),
            tags: Vec::new(),
            nickname: None,
        }
    );
    assert_eq!(taken(&log), [r#"NewUser { name: "ann" }"#]);

    // A field the new schema dropped gets its old default on the old server.
    assert_eq!(users.profile(v2::evo::Profile { bio: "hi".into() }).await.expect("profile"), "hi/old");

    // The old server's replies of the open enum decode as they are.
    assert_eq!(users.paint(1).await.expect("paint"), v2::evo::Color::Green(5));

    // The old server ignores a field it does not know, without a default on the new side.
    assert_eq!(users.strict(v2::evo::Strict { a: 4, b: 5 }).await.expect("strict"), 4);
    assert_eq!(taken(&log), [r#"Profile { bio: "hi", legacy: "old" }"#, "Strict { a: 4 }"]);

    // Breaking for this order: the new client may send what the old server cannot read.
    assert_refused(users.count(v2::evo::Count { n: 1 }).await, "count", "the client sends u64, the server reads u32");
    assert_refused(users.measure(v2::evo::Shape::Circle(1)).await, "measure", "variant 3 of a closed enum");
    assert_refused(
        users.retype(v2::evo::Retype { value: "7".into() }).await,
        "retype",
        "the client sends string, the server reads u32",
    );
    assert_refused(users.plot(v2::evo::Point { x: 1, y: 2, z: 3 }).await, "plot", "frozen struct");
    assert_eq!(taken(&log), Vec::<String>::new(), "no refused call reached a handler");

    // A method the old server does not have.
    let err = users.ping(()).await.expect_err("old servers have no ping");
    let Error::Status(status) = err else { panic!("{err:?}") };
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
}

#[tokio::test]
async fn peers_of_the_same_version_are_never_refused() {
    use v2::evo::UsersClientExt;
    let client = Client::dial(serve(v2::evo::UsersServer::new(New(Log::default())))).await.expect("dial");
    let users = client.users();
    assert_eq!(users.count(v2::evo::Count { n: u64::MAX }).await, Ok(u64::MAX));
    assert_eq!(users.plot(v2::evo::Point { x: 1, y: 2, z: 3 }).await, Ok(6));
    assert_eq!(users.retype(v2::evo::Retype { value: "x".into() }).await, Ok(0));
    assert_eq!(users.paint(2).await, Ok(v2::evo::Color::Blue { shade: 9 }));
}
