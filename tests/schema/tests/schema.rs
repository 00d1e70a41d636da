//! The generated types and services of a multi-file, multi-package schema, end to end over
//! loopback TCP: every type construct round-trips, each package's types are distinct, declared
//! errors arrive typed, deprecated methods still work, and the `Config` attributes took effect.

use std::collections::{HashMap, HashSet};
use tidl_runtime::bytes::Bytes;
use tidl_runtime::{Client, Context, Error, Server};
use tidl_schema_tests::locator_schema::locator::LocatorClientExt;
use tidl_schema_tests::shop_schema::geo;
use tidl_schema_tests::shop_schema::money::Money;
use tidl_schema_tests::shop_schema::shop::inventory::{self, InventoryClientExt, InventoryServer, Item, Sku};
use tidl_schema_tests::shop_schema::shop::{
    self, Category, CategoryRef, Line, Order, OrderIds, Rule, ShopClientExt, ShopError, ShopServer, Status,
};
use tokio::sync::Mutex;

#[derive(Default)]
struct Shop {
    orders: Mutex<HashMap<u64, Order>>,
}

impl shop::Shop for Shop {
    async fn place(&self, _ctx: Context, order: Order) -> Result<u64, Error<ShopError>> {
        for line in &order.lines {
            if line.quantity > 10 {
                return Err(Error::App(ShopError::OutOfStock { sku: line.item.sku.clone(), available: 10 }));
            }
        }
        let id = order.id;
        self.orders.lock().await.insert(id, order);
        Ok(id)
    }

    async fn get(&self, _ctx: Context, id: u64) -> Result<Option<Order>, Error> {
        Ok(self.orders.lock().await.get(&id).cloned())
    }

    async fn ids(&self, _ctx: Context, (): ()) -> Result<OrderIds, Error> {
        let mut ids: Vec<u64> = self.orders.lock().await.keys().copied().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn count(&self, _ctx: Context, tree: Category) -> Result<u32, Error> {
        fn count(c: &Category) -> u32 {
            1 + c.children.iter().map(count).sum::<u32>()
        }
        Ok(count(&tree))
    }

    async fn price(&self, _ctx: Context, rule: Rule) -> Result<Money, Error> {
        fn cents(rule: &Rule) -> i64 {
            match rule {
                Rule::Fixed(money) => money.cents,
                Rule::Discount { percent, then } => cents(then) * (100 - i64::from(*percent)) / 100,
                Rule::Both(a, b) => cents(a) + cents(b),
            }
        }
        Ok(Money { cents: cents(&rule), currency: *b"EUR" })
    }

    #[allow(deprecated)]
    async fn fetch(&self, ctx: Context, id: u64) -> Result<Option<Order>, Error> {
        self.get(ctx, id).await
    }

    async fn r#type(&self, _ctx: Context, sku: Sku) -> Result<String, Error> {
        Ok(format!("type of {sku}"))
    }
}

struct Inventory;

impl inventory::Inventory for Inventory {
    async fn stock(&self, _ctx: Context, sku: Sku) -> Result<u32, Error> {
        Ok(u32::try_from(sku.len()).unwrap_or(u32::MAX))
    }

    async fn area(&self, _ctx: Context, polygon: geo::Polygon) -> Result<f64, Error> {
        Ok(polygon.len() as f64)
    }
}

async fn client() -> Client {
    let server =
        Server::builder().register(ShopServer::new(Shop::default())).register(InventoryServer::new(Inventory)).build();
    let addr = server.listen("127.0.0.1:0").await.expect("bind loopback");
    Client::dial(addr).await.expect("dial")
}

fn order(id: u64, quantity: u32) -> Order {
    let item = Item {
        sku: "SKU-1".into(),
        name: "widget".into(),
        warehouse: geo::Point { lat: 52.5, lon: 13.4 },
        shelf: shop::Point { aisle: 3, shelf: 7 },
    };
    #[allow(deprecated)]
    Order {
        id,
        customer: Some("ünïcödé ✓".into()),
        lines: vec![Line { item, quantity }],
        total: Money { cents: 1999, currency: *b"EUR" },
        destination: geo::Point { lat: -33.9, lon: 151.2 },
        pickup: shop::Point::default(),
        tags: HashMap::from([("gift".into(), vec!["wrap".into(), "card".into()])]),
        flags: [true, false, true, false],
        digest: [7; 32],
        attachment: Bytes::from_static(b"\x00\x01\xff"),
        status: Status::Shipped { carrier: "post".into(), tracking: None },
        labels: vec!["old".into()],
        small: -1,
        medium: -300,
        large: i32::MAX,
        ratio: 0.5,
        score: -1.25,
        tiny: 200,
        port: 8080,
        count: 12,
        nothing: (),
        r#type: "kind".into(),
    }
}

#[tokio::test]
async fn an_order_with_every_kind_of_type_round_trips() {
    let client = client().await;
    let shop = client.shop();
    assert_eq!(shop.place(order(1, 2)).await, Ok(1));
    assert_eq!(shop.get(1).await, Ok(Some(order(1, 2))));
    assert_eq!(shop.get(2).await, Ok(None));
    assert_eq!(shop.place(order(5, 1)).await, Ok(5));
    assert_eq!(shop.ids(()).await, Ok(vec![1, 5]));
}

#[tokio::test]
async fn declared_errors_arrive_typed() {
    let client = client().await;
    let refused = client.shop().place(order(9, 11)).await;
    assert_eq!(refused, Err(Error::App(ShopError::OutOfStock { sku: "SKU-1".into(), available: 10 })));
    assert_eq!(
        refused.expect_err("refused").to_string(),
        "application error: out of stock (sku: \"SKU-1\", available: 10)"
    );
}

#[tokio::test]
async fn recursive_types_and_aliases_work() {
    let client = client().await;
    let leaf = |name: &str| Category { name: name.into(), children: vec![], parent: None };
    let parent: CategoryRef = Some(Box::new(leaf("root")));
    let tree = Category { name: "tools".into(), children: vec![leaf("saws"), leaf("drills")], parent: Some(parent) };
    assert_eq!(client.shop().count(tree).await, Ok(3));

    let rule = Rule::Both(
        Box::new(Rule::Fixed(Money { cents: 1000, currency: *b"EUR" })),
        Box::new(Rule::Discount { percent: 50, then: Box::new(Rule::Fixed(Money { cents: 400, currency: *b"EUR" })) }),
    );
    assert_eq!(client.shop().price(rule).await, Ok(Money { cents: 1200, currency: *b"EUR" }));
}

#[tokio::test]
async fn services_of_nested_packages_keywords_and_deprecated_methods_work() {
    let client = client().await;
    assert_eq!(client.inventory().stock("ABCD".into()).await, Ok(4));
    let polygon: geo::Polygon = vec![geo::Point { lat: 0.0, lon: 0.0 }; 3];
    assert_eq!(client.inventory().area(polygon).await, Ok(3.0));
    assert_eq!(client.shop().r#type("x".into()).await, Ok("type of x".into()));
    client.shop().place(order(3, 1)).await.expect("placed");
    #[allow(deprecated)]
    let fetched = client.shop().fetch(3).await;
    assert_eq!(fetched, Ok(Some(order(3, 1))));
}

#[test]
fn config_attributes_reached_the_generated_types() {
    // `#[derive(Copy, Eq, Hash, Default)]` on shop.Point, `#[derive(Copy)]` on geo.Point, and
    // `#[derive(Eq, Hash)]` on every type of package `money`.
    let point = shop::Point::default();
    let copied = point;
    assert_eq!(HashSet::from([point, copied]).len(), 1);
    let here = geo::Point { lat: 1.0, lon: 2.0 };
    let there = here;
    assert_eq!(here, there);
    assert_eq!(HashSet::from([Money { cents: 1, currency: *b"EUR" }]).len(), 1);
}

#[tokio::test]
async fn the_client_only_schema_has_a_client() {
    // `locator.tidl` was compiled with `build_server(false)`: its module has a client (and no
    // `Locator` trait or `LocatorServer`, which would not compile here if they existed and were
    // used). Calling it against a server without the service gets `Unimplemented`.
    let client = client().await;
    let status = client.locator().locate("home".into()).await.expect_err("no such service");
    assert_eq!(status.code(), Some(tidl_runtime::Code::Unimplemented));
}
