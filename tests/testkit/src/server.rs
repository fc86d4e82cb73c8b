//! Starting the server under test. A macro rather than a function: this
//! crate sees poolscope with no feature of its own, so only the test that
//! calls it, built with `http`, can name `poolscope::http`.

/// Starts a `poolscope::http::Server` on 127.0.0.1 at a port the kernel
/// picks (read it back with `local_addr()`), on the current tokio runtime.
/// The optional argument configures the builder further:
///
/// ```text
/// let server = common::start_server!();
/// let server = common::start_server!(|server| server.with_max_connections(1));
/// ```
///
/// # Panics
///
/// When the server cannot be built or started (outside a tokio runtime,
/// say): a test has no use for one that did not start.
#[macro_export]
macro_rules! start_server {
    () => {
        $crate::start_server!(|server| server)
    };
    ($configure:expr $(,)?) => {
        $crate::configured(
            ::poolscope::http::Server::builder()
                .with_address(::std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            $configure,
        )
        .build()
        .expect("a server on 127.0.0.1")
        .start()
        .expect("the server starts")
    };
}

/// `configure(builder)`: gives [`start_server!`]'s closure the builder's
/// type, which the closure alone would leave unknown.
#[doc(hidden)]
pub fn configured<B>(builder: B, configure: impl FnOnce(B) -> B) -> B {
    configure(builder)
}
