//! Mutual TLS: certificates generated at start (a CA, a server certificate for `localhost`, a
//! client certificate for `alice.example`), a server that requires client certificates, and a
//! handler that greets its caller by the name in the caller's verified certificate.
//!
//! Run it with `cargo run --example tls`.

use example::lab::{Lab, LabClientExt, LabServer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tidl_runtime::transport::tcp::TcpConnector;
use tidl_runtime::transport::tls::{self, TlsConnector, TlsListener};
use tidl_runtime::{CallOptions, Client, Context, Error, Incoming, Invoke, Method, Server, Service, Status};

/// `Greeter.hello(string) -> string`, written by hand (what generated code does): the handler
/// prints and greets the name in the client's certificate.
struct Greeter;

impl Service for Greeter {
    fn name(&self) -> &'static str {
        "Greeter"
    }

    fn call(&self, method: &str, request: Incoming) -> Result<(), Incoming> {
        match method {
            "hello" => request.spawn(Method::new("Greeter", "hello"), |ctx: Context, greeting: String| async move {
                let peer = ctx.peer();
                let name = peer.tls_name().ok_or_else(|| Status::unauthenticated("no client certificate"))?;
                println!(
                    "server: {greeting:?} from {name} (at {})",
                    peer.socket_addr().map_or("?".into(), |a| a.to_string())
                );
                Ok::<_, Error>(format!("{greeting}, {name}"))
            }),
            _ => return Err(request),
        }
        Ok(())
    }
}

/// A certificate for `name` signed by `ca`, and its key, in PEM.
fn issue(ca: &CertifiedIssuer<'_, KeyPair>, name: &str) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate()?;
    Ok((params.signed_by(&key, ca)?.pem(), key.serialize_pem()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();

    // Certificates: a CA, and a server and a client certificate it signs.
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "example CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let (server_chain, server_key) = issue(&ca, "localhost")?;
    let (client_chain, client_key) = issue(&ca, "alice.example")?;

    // The server: mutual TLS, clients' certificates checked against the CA.
    let config = tls::server_config(server_chain.as_bytes(), server_key.as_bytes(), Some(ca.pem().as_bytes()))?;
    let server = Server::builder().register(Greeter).register(LabServer::new(Lab)).build();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    println!("serving mutual TLS on {addr}");
    tokio::spawn(async move { server.accept(TlsListener::new(tcp, config)).await });

    // The client: trusts the CA, and presents its own certificate.
    let config = tls::client_config(ca.pem().as_bytes(), Some((client_chain.as_bytes(), client_key.as_bytes())))?;
    let connector = TlsConnector::new(TcpConnector::new(addr.to_string()), config, "localhost")?;
    let client = Client::connect(connector).await?;
    println!("client: connected to {} (the server's certificate names {:?})", client.peer(), client.peer().tls_name());
    let reply: Result<String, Error> =
        client.call(Method::new("Greeter", "hello"), "hello", &CallOptions::default()).await;
    println!("client: the server answered {:?}", reply?);
    println!("client: whoami says {:?}", client.lab().whoami(()).await?);

    // A client without a certificate is refused, and told why.
    let config = tls::client_config(ca.pem().as_bytes(), None)?;
    let connector = TlsConnector::new(TcpConnector::new(addr.to_string()), config, "localhost")?;
    match Client::connect(connector).await {
        Ok(_) => println!("client without a certificate: connected (unexpected)"),
        Err(status) => println!("client without a certificate: {status}"),
    }
    Ok(())
}
