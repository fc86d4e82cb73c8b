//! Every function shape `#[observe]` supports compiles, warning-free, in
//! every feature combination.
#![deny(warnings)]

use std::fmt::Debug;
use std::future::Future;

use poolscope::correlation::CorrelationId;
use poolscope::{observe, Label};

#[derive(Debug)]
pub struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

impl std::error::Error for Failure {}

#[observe]
fn unit() {}

#[observe(name = "custom", pool = "p", command = "c")]
fn result(x: u32) -> Result<u32, Failure> {
    if x == 0 {
        return Err(Failure);
    }
    let y = Ok::<u32, Failure>(x)?;
    Ok(y)
}

#[observe(skip(secret))]
fn patterns((a, mut b): (u8, u8), Wrapper { inner }: Wrapper, secret: &str, _: u8) -> u8 {
    b += a + inner;
    b + secret.len() as u8
}

pub struct Wrapper {
    inner: u8,
}

#[observe]
fn generic<T: Clone + Debug, const N: usize>(items: [T; N]) -> Vec<T>
where
    T: Send,
{
    items.to_vec()
}

#[observe]
fn borrowed<'a>(text: &'a str, n: usize) -> &'a str {
    &text[..n]
}

#[observe]
fn impl_arg(values: impl IntoIterator<Item = u8>) -> impl Iterator<Item = u8> {
    values.into_iter().map(|v| v + 1)
}

#[observe]
fn diverges_sometimes(x: u8) -> u8 {
    if x > 200 {
        panic!("too big");
    }
    x
}

#[observe(correlation = header)]
fn adopts(header: &str) -> Option<CorrelationId> {
    // Used by the attribute only would be an unused variable in builds
    // without the `correlation` aspect, exactly as without poolscope.
    let _ = header;
    poolscope::correlation::current()
}

#[observe]
unsafe fn unsafe_fn(p: *const u8) -> u8 {
    unsafe { *p }
}

#[observe]
extern "C" fn c_abi(x: i32) -> i32 {
    x
}

#[observe(kind = pool_start, size = n)]
fn start(n: usize) -> std::io::Result<()> {
    let _ = n;
    Ok(())
}

#[observe(kind = worker_start, worker = id)]
fn spawn_worker(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

#[observe(kind = session_create, ttl = std::time::Duration::from_secs(5))]
fn create_session() -> String {
    String::new()
}

pub struct Pool {
    label: Label,
    items: Vec<u8>,
}

impl Pool {
    #[observe(pool = self.label, command = "push", worker = 1)]
    pub fn push(&mut self, item: u8) -> &mut Vec<u8> {
        self.items.push(item);
        &mut self.items
    }

    #[observe(pool = self.label.as_str())]
    pub fn into_items(self) -> Vec<u8> {
        self.items
    }

    #[observe(pool = self.label)]
    pub async fn async_method(&self, n: usize) -> Result<usize, Failure> {
        std::future::ready(()).await;
        if n == 0 {
            Err(Failure)?;
        }
        Ok(self.items.len() + n)
    }

    #[observe]
    pub fn returns_future(&self) -> impl Future<Output = usize> + '_ {
        async move { self.items.len() }
    }
}

pub trait Service {
    #[observe]
    fn default_method(&self) -> u8 {
        1
    }
}

impl Service for Pool {}

#[async_trait::async_trait]
pub trait AsyncService {
    async fn call(&self, x: u8) -> Result<u8, Failure>;
}

#[async_trait::async_trait]
impl AsyncService for Pool {
    #[observe(command = "call")]
    async fn call(&self, x: u8) -> Result<u8, Failure> {
        Ok(x + self.items.len() as u8)
    }
}

#[observe]
async fn async_unit() {}

#[observe]
async fn async_generic<T: Debug + Send>(value: T) -> T {
    value
}

#[observe]
async fn async_impl_return() -> impl Debug {
    5
}

fn main() {
    unit();
    let _ = result(1);
    let _ = patterns((1, 2), Wrapper { inner: 3 }, "s", 0);
    let _ = generic([1, 2, 3]);
    let _ = borrowed("hello", 2);
    let _ = impl_arg([1, 2]).count();
    let _ = diverges_sometimes(1);
    let _ = adopts("abc");
    let _ = unsafe { unsafe_fn(&7) };
    let _ = c_abi(1);
    let _ = start(1);
    let _ = spawn_worker(1);
    let _ = create_session();
    let mut pool = Pool { label: Label::new("p"), items: Vec::new() };
    pool.push(1).push(2);
    let _ = pool.default_method();
    let _ = pool.returns_future();
    let _ = pool.async_method(1);
    let _ = AsyncService::call(&pool, 1);
    let _ = async_unit();
    let _ = async_generic(1);
    let _ = async_impl_return();
    let _ = pool.into_items();
}
