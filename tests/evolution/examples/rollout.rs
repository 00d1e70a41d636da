//! A rolling upgrade in one process: a server built from `tidl/v2.tidl` answers a client built
//! from `tidl/v1.tidl`, then an old server answers a new client. Safe changes just work (new
//! fields get their defaults, unknown ones are skipped, an unknown variant of an open enum is
//! `Unknown`); a change the two sides cannot bridge is refused with `FailedPrecondition`, naming
//! the method, before any handler runs.
//!
//! Run it with `cargo run -p tidl-evolution-tests --example rollout`, and compare the two
//! versions with `cargo run -p tidl-compiler -- compat tests/evolution/tidl/v1.tidl tests/evolution/tidl/v2.tidl`.

use tidl_evolution_tests::{v1, v2};
use tidl_runtime::{Client, Context, Error, Server};

/// The old server's handlers.
struct Old;

impl v1::evo::Users for Old {
    async fn create(&self, _: Context, new: v1::evo::NewUser) -> Result<v1::evo::User, Error> {
        println!("  old server got {new:?}");
        Ok(v1::evo::User { id: 1, name: new.name })
    }
    async fn profile(&self, _: Context, p: v1::evo::Profile) -> Result<String, Error> {
        println!("  old server got {p:?}");
        Ok(p.bio)
    }
    async fn count(&self, _: Context, c: v1::evo::Count) -> Result<u64, Error> {
        Ok(u64::from(c.n))
    }
    async fn paint(&self, _: Context, _: u32) -> Result<v1::evo::Color, Error> {
        Ok(v1::evo::Color::Red)
    }
    async fn measure(&self, _: Context, _: v1::evo::Shape) -> Result<u32, Error> {
        Ok(0)
    }
    async fn retype(&self, _: Context, r: v1::evo::Retype) -> Result<u32, Error> {
        Ok(r.value)
    }
    async fn strict(&self, _: Context, s: v1::evo::Strict) -> Result<u32, Error> {
        Ok(s.a)
    }
    async fn plot(&self, _: Context, p: v1::evo::Point) -> Result<i32, Error> {
        Ok(p.x + p.y)
    }
}

/// The new server's handlers.
struct New;

impl v2::evo::Users for New {
    async fn create(&self, _: Context, new: v2::evo::NewUser) -> Result<v2::evo::User, Error> {
        println!("  new server got {new:?}");
        Ok(v2::evo::User {
            id: 2,
            display_name: new.name,
            email: "ann@example.com".into(),
            tags: vec!["admin".into()],
            nickname: new.referrer,
        })
    }
    async fn profile(&self, _: Context, p: v2::evo::Profile) -> Result<String, Error> {
        Ok(p.bio)
    }
    async fn count(&self, _: Context, c: v2::evo::Count) -> Result<u64, Error> {
        Ok(c.n)
    }
    async fn paint(&self, _: Context, _: u32) -> Result<v2::evo::Color, Error> {
        Ok(v2::evo::Color::Blue { shade: 9 })
    }
    async fn measure(&self, _: Context, _: v2::evo::Shape) -> Result<u32, Error> {
        Ok(0)
    }
    async fn retype(&self, _: Context, _: v2::evo::Retype) -> Result<u32, Error> {
        Ok(0)
    }
    async fn strict(&self, _: Context, s: v2::evo::Strict) -> Result<u32, Error> {
        Ok(s.a + s.b)
    }
    async fn plot(&self, _: Context, p: v2::evo::Point) -> Result<i32, Error> {
        Ok(p.x + p.y + p.z)
    }
    async fn ping(&self, _: Context, (): ()) -> Result<String, Error> {
        Ok("pong".into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let new_server = Server::builder().register(v2::evo::UsersServer::new(New)).build();
    let new_addr = new_server.listen("127.0.0.1:0").await?;
    let old_server = Server::builder().register(v1::evo::UsersServer::new(Old)).build();
    let old_addr = old_server.listen("127.0.0.1:0").await?;

    println!("old client -> new server");
    {
        use v1::evo::UsersClientExt;
        let users = Client::dial(new_addr).await?.users();
        let user = users.create(v1::evo::NewUser { name: "ann".into() }).await?;
        println!("  old client got {user:?} (the new fields skipped)");
        println!("  paint -> {:?} (a variant it does not know)", users.paint(2).await?);
        match users.retype(v1::evo::Retype { value: 7 }).await {
            Ok(v) => println!("  retype -> {v}"),
            Err(e) => println!("  retype refused: {e}"),
        }
    }

    println!("new client -> old server");
    {
        use v2::evo::UsersClientExt;
        let users = Client::dial(old_addr).await?.users();
        let user = users.create(v2::evo::NewUser { name: "bob".into(), referrer: Some("ann".into()) }).await?;
        println!("  new client got {user:?} (defaults filled)");
        match users.count(v2::evo::Count { n: 1 << 40 }).await {
            Ok(v) => println!("  count -> {v}"),
            Err(e) => println!("  count refused: {e}"),
        }
        match users.ping(()).await {
            Ok(v) => println!("  ping -> {v}"),
            Err(e) => println!("  ping failed: {e}"),
        }
    }
    Ok(())
}
