//! The golden output compiles (under the workspace's lints and clippy), and the types and
//! services it declares work end to end over loopback TCP.

// Private to this test: the generated public API is partly unused here. Any other warning in
// the generated code (such as a use of a deprecated type) fails the test, as it would fail a
// crate that denies warnings.
#[deny(warnings)]
#[allow(unreachable_pub, dead_code)]
mod kitchen_sink {
    include!("golden/kitchen_sink.rs");
}

use kitchen_sink::{
    Everything, Expr, Geometry, GeometryClientExt, GeometryServer, I, LookupError, Point, Shape, TClientExt, TServer,
    Tree,
};
use std::collections::HashMap;
use tidl_runtime::{Client, Context, Error, Server};

struct Impl;

impl Geometry for Impl {
    async fn ping(&self, _ctx: Context, (): ()) -> Result<(), Error> {
        Ok(())
    }

    async fn area(&self, _ctx: Context, shape: Shape) -> Result<f64, Error> {
        Ok(match shape {
            Shape::Empty => 0.0,
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect { size, .. } => f64::from(size.x) * f64::from(size.y),
        })
    }

    async fn lookup(&self, _ctx: Context, name: String) -> Result<Point, Error<LookupError>> {
        match name.as_str() {
            "origin" => Ok(Point { x: 0, y: 0 }),
            "secret" => Err(Error::App(LookupError::Denied { reason: "classified".into() })),
            _ => Err(Error::App(LookupError::NotFound)),
        }
    }

    async fn everything(&self, _ctx: Context, value: Everything) -> Result<Everything, Error> {
        Ok(value)
    }

    async fn evaluate(&self, _ctx: Context, expr: Expr) -> Result<i64, Error> {
        eval(&expr).map_err(Error::App)
    }

    async fn r#type(&self, _ctx: Context, tree: Tree) -> Result<u64, Error> {
        fn count(tree: &Tree) -> u64 {
            1 + tree.children.iter().map(count).sum::<u64>()
        }
        Ok(count(&tree))
    }
}

fn eval(expr: &Expr) -> Result<i64, String> {
    Ok(match expr {
        Expr::Literal(n) => *n,
        Expr::Neg(e) => -eval(e)?,
        Expr::Sum(a, b) => eval(a)? + eval(b)?,
        Expr::Call { name, args } if name == "max" => {
            args.iter().map(eval).collect::<Result<Vec<_>, _>>()?.into_iter().max().unwrap_or(0)
        }
        Expr::Call { name, .. } => return Err(format!("unknown function `{name}`")),
    })
}

impl kitchen_sink::T for Impl {
    async fn a(&self, _ctx: Context, (): ()) -> Result<(), Error> {
        Ok(())
    }

    async fn i(&self, _ctx: Context, i: I) -> Result<I, Error> {
        Ok(I { n: i.n + 1 })
    }
}

async fn client() -> Client {
    let server = Server::builder().register(GeometryServer::new(Impl)).register(TServer::new(Impl)).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    Client::dial(addr).await.expect("dial")
}

#[tokio::test]
async fn every_type_round_trips() {
    let client = client().await;
    let value = Everything {
        unit: (),
        flag: true,
        small: -8,
        short: -16_000,
        int: i32::MIN,
        long: i64::MAX,
        byte: 255,
        ushort: 65_535,
        uint: u32::MAX,
        ulong: u64::MAX,
        single: 1.5,
        double: -0.125,
        text: "ünïcödé ✓".into(),
        blob: tidl_runtime::bytes::Bytes::from_static(&[0, 1, 2, 255]),
        points: vec![Point { x: 1, y: 2 }, Point { x: -3, y: 4 }],
        index: HashMap::from([("a".into(), vec![None, Some(Point { x: 5, y: 6 })])]),
        maybe: Some(Point { x: 7, y: 8 }),
        r#type: "keyword field".into(),
        camel_case: 9,
    };
    assert_eq!(client.geometry().everything(value.clone()).await, Ok(value));
    assert_eq!(client.geometry().ping(()).await, Ok(()));
    assert_eq!(client.t().a(()).await, Ok(()));
    assert_eq!(client.t().i(I { n: 1 }).await, Ok(I { n: 2 }));
}

#[tokio::test]
async fn enums_recursive_types_and_declared_errors_work() {
    let client = client().await;
    let geometry = client.geometry();
    let rect = Shape::Rect { corner: Point { x: 0, y: 0 }, size: Point { x: 3, y: 4 } };
    assert_eq!(geometry.area(rect).await, Ok(12.0));
    assert_eq!(geometry.area(Shape::Empty).await, Ok(0.0));

    assert_eq!(geometry.lookup("origin".into()).await, Ok(Point { x: 0, y: 0 }));
    assert_eq!(geometry.lookup("nowhere".into()).await, Err(Error::App(LookupError::NotFound)));
    let denied = geometry.lookup("secret".into()).await.expect_err("denied");
    assert_eq!(denied.to_string(), "application error: denied (reason: \"classified\")");

    let expr = Expr::Sum(
        Box::new(Expr::Literal(40)),
        Box::new(Expr::Call {
            name: "max".into(),
            args: vec![Expr::Neg(Box::new(Expr::Literal(-2))), Expr::Literal(1)],
        }),
    );
    assert_eq!(geometry.evaluate(expr).await, Ok(42));

    let leaf = |label: &str| Tree { label: label.into(), children: vec![], parent_hint: None };
    let tree =
        Tree { label: "root".into(), children: vec![leaf("a"), leaf("b")], parent_hint: Some(Box::new(leaf("up"))) };
    assert_eq!(geometry.r#type(tree).await, Ok(3));
}

#[deny(warnings)]
#[allow(unreachable_pub, dead_code, deprecated)]
mod streams {
    include!("golden/streams.rs");
}

/// The generated streaming code of every kind, over loopback TCP.
mod streaming {
    use super::streams::feed::{Chunk, Event, Feed, FeedClientExt, FeedServer, Filter, Summary, UploadError};
    use tidl_runtime::{Client, Context, Error, Server, Sink, Source};

    struct FeedImpl;

    impl Feed for FeedImpl {
        async fn watch(&self, _ctx: Context, filter: Filter, mut out: Sink<Event>) -> Result<(), Error> {
            for id in 1..=3 {
                out.send(Event { id, text: format!("{} #{id}", filter.topic) }).await?;
            }
            Ok(())
        }

        async fn ticks(&self, _ctx: Context, (): (), mut out: Sink<u64>) -> Result<(), Error> {
            for n in 0.. {
                out.send(n).await?;
            }
            Ok(())
        }

        async fn upload(&self, _ctx: Context, mut chunks: Source<Chunk>) -> Result<Summary, Error<UploadError>> {
            let mut summary = Summary { chunks: 0, size: 0 };
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                summary.chunks += 1;
                summary.size += chunk.data.len() as u64;
                if summary.size > 100 {
                    return Err(Error::App(UploadError::TooLarge { limit: 100 }));
                }
            }
            if summary.chunks == 0 {
                return Err(Error::App(UploadError::Empty));
            }
            Ok(summary)
        }

        async fn drain(&self, _ctx: Context, mut chunks: Source<Chunk>) -> Result<(), Error> {
            while chunks.next().await.is_some() {}
            Ok(())
        }

        async fn chat(
            &self,
            _ctx: Context,
            mut msgs: Source<String>,
            mut out: Sink<String>,
        ) -> Result<(), Error<UploadError>> {
            while let Some(msg) = msgs.next().await {
                out.send(format!("re: {}", msg?)).await?;
            }
            Ok(())
        }

        async fn echo_all(
            &self,
            _ctx: Context,
            mut items: Source<Vec<String>>,
            mut out: Sink<Vec<String>>,
        ) -> Result<(), Error> {
            while let Some(item) = items.next().await {
                out.send(item?).await?;
            }
            Ok(())
        }

        async fn ping(&self, _ctx: Context, filter: Filter) -> Result<Event, Error> {
            Ok(Event { id: 0, text: filter.topic })
        }
    }

    async fn client() -> Client {
        let server = Server::builder().register(FeedServer::new(FeedImpl)).build();
        let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
        Client::dial(addr).await.expect("dial")
    }

    #[tokio::test]
    async fn every_kind_of_streaming_method_works_through_generated_code() {
        let client = client().await;
        let feed = client.feed();
        // Server streaming.
        let mut events = feed.watch(Filter { topic: "news".into() });
        let mut texts = Vec::new();
        while let Some(event) = events.message().await.expect("an event") {
            texts.push(event.text);
        }
        assert_eq!(texts, ["news #1", "news #2", "news #3"]);
        // An endless stream, dropped: the call is cancelled.
        let mut ticks = feed.ticks(());
        assert_eq!(ticks.message().await, Ok(Some(0)));
        drop(ticks);
        // Client streaming, with a declared error.
        let (mut chunks, summary) = feed.upload();
        for _ in 0..3 {
            chunks.send(Chunk { data: vec![0; 10].into() }).await.expect("sent");
        }
        drop(chunks);
        assert_eq!(summary.await, Ok(Summary { chunks: 3, size: 30 }));
        let (chunks, summary) = feed.upload();
        drop(chunks);
        assert_eq!(summary.await, Err(Error::App(UploadError::Empty)));
        // Bidirectional.
        let (mut msgs, mut replies) = feed.chat();
        msgs.send("hi".into()).await.expect("sent");
        assert_eq!(replies.message().await, Ok(Some("re: hi".to_owned())));
        msgs.close();
        assert_eq!(replies.message().await, Ok(None));
        // Unary beside them.
        assert_eq!(feed.ping(Filter { topic: "x".into() }).await.map(|e| e.text), Ok("x".to_owned()));
    }
}
