//! gRPC statuses from a real tonic client and server on 127.0.0.1 (the
//! standard health service), captured as structured error context.

use poolscope_testkit as common;

use common::*;
use poolscope::error::ErrorDetails;
use poolscope::observe;
use poolscope_testkit::ERRORS;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn server() -> std::net::SocketAddr {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        // Kept by the spawned task: the reporter must outlive the server.
        let _reporter = _reporter;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
    });
    addr
}

async fn client(addr: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

#[observe(pool = "grpc", command = "check", skip(client))]
async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<i32, tonic::Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer grpc-secret-token".parse().unwrap());
    Ok(client.check(request).await?.into_inner().status)
}

#[tokio::test]
async fn a_status_from_a_real_server_is_captured_with_code_and_message() {
    let addr = server().await;
    let mut client = client(addr).await;
    let status = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    let ctx = status.error_context();
    let grpc = ctx.grpc.as_ref().unwrap();
    assert_eq!((grpc.code, grpc.code_name.as_str()), (5, "NOT_FOUND"));
    assert_eq!(grpc.message, status.message());
    assert_eq!(ctx.message, format!("NOT_FOUND: {}", status.message()));
    assert_eq!(ctx.type_name, "tonic::Status");

    let local = tonic::Status::with_metadata(
        tonic::Code::Unavailable,
        "worker 3 is gone: password=leaked",
        {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("x-worker", "3".parse().unwrap());
            m.insert("authorization", "Bearer abcdefghijk".parse().unwrap());
            m
        },
    );
    let ctx = local.error_context();
    let grpc = ctx.grpc.unwrap();
    assert_eq!((grpc.code, grpc.code_name.as_str()), (14, "UNAVAILABLE"));
    assert_eq!(grpc.message, "worker 3 is gone: password=[REDACTED]");
    assert_eq!(
        grpc.metadata,
        [("x-worker".to_owned(), "3".to_owned())],
        "secret-named metadata is left out"
    );
}

#[tokio::test]
async fn observed_grpc_calls_carry_the_status_in_their_events() {
    let captured = capture("grpc");
    let addr = server().await;
    let mut client = client(addr).await;
    assert_eq!(
        check(&mut client, "").await.unwrap(),
        1,
        "the empty service name is SERVING"
    );
    check(&mut client, "missing").await.unwrap_err();
    let events = captured.take();
    if !ANY {
        assert!(events.is_empty());
        return;
    }
    let done = completions(&events);
    assert_eq!(
        done.iter().map(|c| c.outcome.as_str()).collect::<Vec<_>>(),
        ["ok", "error"]
    );
    if ERRORS {
        let grpc = done[1].error.as_ref().unwrap().grpc.as_ref().unwrap();
        assert_eq!(grpc.code_name, "NOT_FOUND");
    }
}
