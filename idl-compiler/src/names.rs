//! Every name the compiler generates, and the words that limit them: the one place that knows
//! what a `.tidl` name becomes in Rust (`Example` -> `Example`, `ExampleServer`,
//! `ExampleClient`, `ExampleClientExt`, `client.example()`), which names Rust or the generated
//! code already use, and the keywords of both languages.
//!
//! Validation asks it whether a name is allowed; code generation asks it what to write. Neither
//! builds a generated name itself.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// The words of the `.tidl` language.
pub(crate) const TIDL_KEYWORDS: &[&str] =
    &["enum", "import", "package", "rpc", "service", "stream", "struct", "throws", "type"];

/// The `.tidl` keywords that may still be names, because where they are keywords no name can
/// stand: `type` (a field may be called `type`) and `stream` (only before a type). The grammar's
/// `keyword` rule lists the others; a test checks the two agree.
#[cfg(test)]
pub(crate) const TIDL_CONTEXTUAL_KEYWORDS: &[&str] = &["stream", "type"];

/// Whether `word` is a `.tidl` keyword (contextual or not).
pub(crate) fn is_tidl_keyword(word: &str) -> bool {
    TIDL_KEYWORDS.contains(&word)
}

/// Rust keywords (strict, reserved and edition-dependent) that `r#` can escape.
pub(crate) const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
    "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move",
    "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Rust words that cannot be names at all, not even as raw identifiers.
pub(crate) const RUST_RESERVED: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Methods of every generated `<Service>Client`; a `.tidl` method may not take these names.
pub(crate) const CLIENT_METHODS: &[&str] = &["new", "timeout", "context", "with_options"];

/// Methods every generated client already has through the standard traits it implements (or
/// that are in the prelude); a method or accessor of the same name would shadow or clash.
pub(crate) const TRAIT_METHODS: &[&str] = &[
    "borrow",
    "borrow_mut",
    "clone",
    "clone_from",
    "clone_into",
    "fmt",
    "from",
    "into",
    "to_owned",
    "try_from",
    "try_into",
    "type_id",
];

/// Public methods of `tidl_runtime::Client`, `Endpoint` and `Balancer`. A service's accessor
/// (`client.example()`) may not take these: an inherent method would hide it. A test reads the
/// runtime's source and fails when `Client` gains a method missing here.
pub const RUNTIME_CLIENT_METHODS: &[&str] = &[
    "call",
    "calls_in_flight",
    "client",
    "connect",
    "connect_with",
    "dial",
    "dial_with",
    "endpoints",
    "from_addrs",
    "invoke",
    "is_open",
    "new",
    "peer",
    "queued_request_bytes",
    "ready",
    "retired",
    "state",
    "with_config",
    "with_connector",
];

/// Methods of the `tidl_runtime::Invoke` trait, which every accessor's blanket impl builds on.
pub const INVOKE_METHODS: &[&str] = &["bidi_stream", "call", "client_stream", "invoke", "server_stream"];

/// Whether a service's accessor may be called `accessor`: a method of `tidl_runtime::Client`,
/// of `Invoke`, or of the standard traits would clash with it.
pub(crate) fn accessor_is_reserved(accessor: &str) -> bool {
    RUNTIME_CLIENT_METHODS.contains(&accessor)
        || INVOKE_METHODS.contains(&accessor)
        || TRAIT_METHODS.contains(&accessor)
}

/// Whether a `.tidl` method's Rust name is taken on every generated client.
pub(crate) fn method_is_reserved(method: &str) -> bool {
    CLIENT_METHODS.contains(&method) || TRAIT_METHODS.contains(&method)
}

/// The reserved method names, for messages.
pub(crate) fn reserved_methods() -> String {
    CLIENT_METHODS.iter().chain(TRAIT_METHODS).copied().collect::<Vec<_>>().join(", ")
}

/// `name` as a Rust identifier: `r#name` for a keyword that `r#` can escape.
pub(crate) fn escape(name: String) -> String {
    if RUST_KEYWORDS.contains(&name.as_str()) { format!("r#{name}") } else { name }
}

/// What a `.tidl` name may become in Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RustName {
    Ok(String),
    /// `self`, `Self`, `super`, `crate`, `_`, or nothing at all.
    Reserved,
    /// Starts with a digit once converted (the converted name).
    StartsWithDigit(String),
}

/// The Rust name of a type, variant or service (upper camel case).
pub(crate) fn type_name(tidl: &str) -> RustName {
    if RUST_RESERVED.contains(&tidl) {
        return RustName::Reserved;
    }
    let rust = tidl.to_upper_camel_case();
    if rust.is_empty() || rust == "Self" {
        return RustName::Reserved;
    }
    if rust.starts_with(|c: char| c.is_ascii_digit()) {
        return RustName::StartsWithDigit(rust);
    }
    RustName::Ok(rust)
}

/// The Rust name of a field, method or module (snake case, `r#` for keywords).
pub(crate) fn value_name(tidl: &str) -> RustName {
    if RUST_RESERVED.contains(&tidl) {
        return RustName::Reserved;
    }
    let rust = tidl.to_snake_case();
    if rust.is_empty() || RUST_RESERVED.contains(&rust.as_str()) {
        return RustName::Reserved;
    }
    if rust.starts_with(|c: char| c.is_ascii_digit()) {
        return RustName::StartsWithDigit(rust);
    }
    RustName::Ok(escape(rust))
}

/// A type's or variant's Rust name in lower-case words, for messages: `OutOfStock` -> `out of
/// stock`.
pub(crate) fn words(rust_name: &str) -> String {
    rust_name.trim_start_matches("r#").to_snake_case().replace('_', " ")
}

/// The Rust name of a method (what [`value_name`] gives).
pub(crate) fn method_name(tidl: &str) -> RustName {
    value_name(tidl)
}

/// The types generated for a service, with what each is (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceType {
    Client,
    Server,
    ClientExt,
}

impl ServiceType {
    /// Every type a service generates besides its trait.
    pub(crate) const ALL: [ServiceType; 3] = [ServiceType::Client, ServiceType::Server, ServiceType::ClientExt];

    /// The type's name for the service whose trait is `service` (a Rust name).
    pub(crate) fn name(self, service: &str) -> String {
        let suffix = match self {
            ServiceType::Client => "Client",
            ServiceType::Server => "Server",
            ServiceType::ClientExt => "ClientExt",
        };
        format!("{service}{suffix}")
    }

    /// What the type is, in words.
    pub(crate) fn what(self) -> &'static str {
        match self {
            ServiceType::Client => "client",
            ServiceType::Server => "server",
            ServiceType::ClientExt => "client extension trait",
        }
    }
}

/// The generated names of one service, from the Rust name of its trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceNames {
    /// The trait to implement: `Example`.
    pub(crate) service: String,
    /// `ExampleServer`.
    pub(crate) server: String,
    /// `ExampleClient`.
    pub(crate) client: String,
    /// `ExampleClientExt`.
    pub(crate) client_ext: String,
    /// The accessor the extension trait adds, unescaped: `example` (`client.example()`).
    pub(crate) accessor: String,
}

impl ServiceNames {
    pub(crate) fn new(service: &str) -> ServiceNames {
        ServiceNames {
            service: service.to_owned(),
            server: ServiceType::Server.name(service),
            client: ServiceType::Client.name(service),
            client_ext: ServiceType::ClientExt.name(service),
            accessor: service.to_snake_case(),
        }
    }

    /// The accessor as a Rust identifier (`r#type` for a service `Type`).
    pub(crate) fn accessor_ident(&self) -> String {
        escape(self.accessor.clone())
    }

    /// The server's type parameter: `T`, unless the service trait is itself called `T`.
    pub(crate) fn server_param(&self) -> &'static str {
        if self.service == "T" { "S" } else { "T" }
    }

    /// The client's type parameter (the `Invoke` implementation): `I`, or the first of `J`,
    /// `K`, ... that names no type the client's methods may mention without a path (`taken`).
    pub(crate) fn client_param(&self, taken: impl Fn(&str) -> bool) -> String {
        let mut candidates = ('I'..='Z').chain('A'..'I').map(String::from);
        candidates
            .find(|c| !taken(c) && *c != self.service && *c != self.client)
            .unwrap_or_else(|| "Invoker".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_follow_the_service() {
        let names = ServiceNames::new("ShopOrders");
        assert_eq!(names.server, "ShopOrdersServer");
        assert_eq!(names.client, "ShopOrdersClient");
        assert_eq!(names.client_ext, "ShopOrdersClientExt");
        assert_eq!(names.accessor, "shop_orders");
        assert_eq!(ServiceNames::new("Type").accessor_ident(), "r#type");
        assert_eq!(ServiceNames::new("T").server_param(), "S");
        assert_eq!(ServiceNames::new("Svc").client_param(|n| n == "I" || n == "J"), "K");
    }

    #[test]
    fn rust_names_are_escaped_or_refused() {
        assert_eq!(value_name("type"), RustName::Ok("r#type".into()));
        assert_eq!(value_name("camelCase"), RustName::Ok("camel_case".into()));
        assert_eq!(value_name("self"), RustName::Reserved);
        assert_eq!(value_name("_1x"), RustName::StartsWithDigit("1x".into()));
        assert_eq!(type_name("point_2d"), RustName::Ok("Point2d".into()));
        assert_eq!(type_name("self_"), RustName::Reserved);
        assert_eq!(words("OutOfStock"), "out of stock");
    }

    #[test]
    fn the_grammar_reserves_exactly_the_non_contextual_keywords() {
        for word in TIDL_KEYWORDS {
            let text = format!("struct S {{ {word}: u8 }}");
            let (_, errors) = crate::parser::parse(crate::diagnostic::FileId(0), &text);
            let contextual = TIDL_CONTEXTUAL_KEYWORDS.contains(word);
            assert_eq!(errors.is_empty(), contextual, "`{word}` as a field name");
        }
    }
}
