//! A pool of Python worker processes behind gRPC, observed with poolscope.
//!
//! Each worker slot owns one `python3 worker.py` process: it spawns it, waits
//! for `READY <port>` and a `Ready` call, then runs one request at a time.
//! A dispatcher task hands queued requests to free workers (or to a session's
//! worker). A worker that dies fails its in-flight request with the crash's
//! context, is reported, and is restarted with backoff.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poolscope::error::{ErrorContext, ErrorDetails, PythonError, PythonTraceback, WorkerCrash};
use poolscope::process::{bind_to_host, StderrSource, WorkerStderr};
use poolscope::{observe, Label, WorkerState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};

/// The messages and the client of `worker.proto`, generated at build time
/// by tonic's codegen (see `build.rs`).
pub mod proto {
    #![allow(missing_docs)] // generated from worker.proto, documented there
    tonic::include_proto!("poolscope.worker");
}

/// A worker's gRPC client.
type Client = proto::worker_client::WorkerClient<tonic::transport::Channel>;

/// Connects to the worker listening on `port`.
async fn connect(port: u16) -> Result<Client, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(Client::new(channel))
}

/// How to run the pool.
#[derive(Clone)]
pub struct PoolConfig {
    /// The pool's name (its `pool` label).
    pub name: String,
    /// Worker processes.
    pub size: usize,
    /// Requests that may wait for a worker; more wait for room (the caller
    /// waits in `execute`). A full queue is saturation, and readiness
    /// under the `capacity` policy fails while it lasts.
    pub queue_capacity: usize,
    /// How long a request may run before it fails.
    pub request_timeout: Duration,
    /// The Python interpreter.
    pub python: String,
    /// `worker.py`.
    pub script: PathBuf,
    /// First restart delay after a crash; doubles per consecutive crash, at most 5 s.
    pub restart_backoff: Duration,
    /// How long a worker may take to start: print `READY <port>`, accept the
    /// connection and answer `Ready`. A worker slower than that is killed
    /// (and at a restart, tried again after the backoff).
    pub start_timeout: Duration,
    /// How often expired sessions are removed.
    pub cleanup_every: Duration,
    /// With the queue full, refuse a request at once (`PoolError::Rejected`,
    /// outcome `rejected`) instead of making the caller wait for room.
    pub reject_when_full: bool,
    /// When set, a crashed worker takes a permit from it before it is
    /// restarted (after its backoff): a test holds a crash in view for as
    /// long as it needs, then adds permits. `None` restarts at once.
    pub restart_gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// What `pool.started` carries as the pool's configuration.
impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("size", &self.size)
            .field("queue_capacity", &self.queue_capacity)
            .field("python", &self.python)
            .field("script", &self.script)
            .field("request_timeout", &self.request_timeout)
            .field("start_timeout", &self.start_timeout)
            .field("restart_backoff", &self.restart_backoff)
            .field("restart_backoff_max", &RESTART_BACKOFF_MAX)
            .field("session_cleanup_every", &self.cleanup_every)
            .finish()
    }
}

/// The longest restart backoff: it doubles per consecutive crash up to this.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl PoolConfig {
    /// Four workers of `examples/python-pool/worker.py`.
    pub fn new(name: &str) -> PoolConfig {
        PoolConfig {
            name: name.to_owned(),
            size: 4,
            queue_capacity: 64,
            request_timeout: Duration::from_secs(30),
            python: std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()),
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("worker.py"),
            restart_backoff: Duration::from_millis(100),
            start_timeout: Duration::from_secs(60),
            cleanup_every: Duration::from_secs(1),
            reject_when_full: false,
            restart_gate: None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The command raised in Python; with the correlation id the worker
    /// answered under.
    #[error("{error} (correlation id {correlation_id})")]
    Python {
        /// The exception and its traceback (boxed: tracebacks are large).
        error: Box<PythonError>,
        /// The request's correlation id, as the worker echoed it back.
        correlation_id: String,
    },
    /// The worker died while running it (boxed: a crash's context is large).
    #[error("{0}")]
    Crash(Box<WorkerCrash>),
    /// The gRPC call failed.
    #[error("gRPC: {0}")]
    Grpc(#[from] tonic::Status),
    /// The command ran longer than the request timeout.
    #[error("the request timed out after {0:?}")]
    Timeout(Duration),
    /// No such session (never created, or expired).
    #[error("unknown or expired session `{0}`")]
    UnknownSession(String),
    /// The arguments or the result are not JSON.
    #[error("bad JSON: {0}")]
    Json(String),
    /// The queue was full and the pool refuses rather than waits
    /// ([`PoolConfig::reject_when_full`]).
    #[error("rejected: the queue is full ({queue_capacity} requests wait)")]
    Rejected {
        /// The queue's capacity.
        queue_capacity: usize,
    },
    /// The pool is shutting down.
    #[error("the pool is shut down")]
    Shutdown,
    /// The pool could not start.
    #[error("the pool could not start: {0}")]
    Start(String),
}

impl ErrorDetails for PoolError {
    fn error_context(&self) -> ErrorContext {
        match self {
            PoolError::Python { error, .. } => error.error_context(),
            PoolError::Crash(e) => e.error_context(),
            PoolError::Grpc(e) => e.error_context(),
            other => ErrorContext::message(
                poolscope::error::ErrorKind::Error,
                "PoolError",
                other.to_string(),
            )
            .sanitized(),
        }
    }

    fn outcome(&self) -> poolscope::Outcome {
        match self {
            PoolError::Timeout(_) => poolscope::Outcome::Timeout,
            PoolError::Rejected { .. } => poolscope::Outcome::Rejected,
            _ => poolscope::Outcome::Error,
        }
    }
}

/// In the reason of a crash the pool caused: it killed a worker whose
/// request ran past the timeout (the Python handler would not stop).
pub const KILLED_AFTER_TIMEOUT: &str = "killed by the pool: its request ran past the timeout";

type Reply = Result<serde_json::Value, PoolError>;

/// Where a request's answer goes, with the worker that ran it.
struct Caller(oneshot::Sender<(Reply, Option<usize>)>);

impl Caller {
    fn answer(self, reply: Reply, worker: Option<usize>) {
        let _ = self.0.send((reply, worker));
    }
}

struct Job {
    request: proto::ExecuteRequest,
    worker: Option<usize>,
    reply: Caller,
    /// When it was queued: the queue wait ends when a worker takes it.
    queued: Instant,
}

enum Msg {
    Job(Job),
    Idle(usize),
    Gone(usize),
    Stopped(usize),
}

struct Session {
    worker: usize,
    expires: Instant,
}

struct Shared {
    config: PoolConfig,
    label: Label,
    observed: poolscope::Pool,
    sessions: Mutex<HashMap<String, Session>>,
    next_worker: std::sync::atomic::AtomicUsize,
    /// Requests queued and not yet given to a worker.
    queued: std::sync::atomic::AtomicUsize,
}

/// The pool. Cheap to clone.
#[derive(Clone)]
pub struct PythonPool {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Msg>,
    // `true` stops every task; dropping the last handle does too (the
    // receivers then see the sender gone).
    stop: Arc<watch::Sender<bool>>,
}

/// Starts the pool: spawns every worker and waits until each is ready.
/// `pool.started` carries the configuration (sanitized, as every event
/// argument is).
#[observe(kind = pool_start, pool = config.name.as_str(), size = config.size)]
pub async fn start(config: PoolConfig) -> Result<PythonPool, PoolError> {
    if config.size == 0 || config.queue_capacity == 0 {
        return Err(PoolError::Start(
            "size and queue capacity must be at least 1".into(),
        ));
    }
    let label = Label::new(&config.name);
    let observed = poolscope::Pool::new(&label);
    observed.set_size(config.size);
    observed.set_queue_capacity(config.queue_capacity);
    let shared = Arc::new(Shared {
        config,
        label,
        observed,
        sessions: Mutex::new(HashMap::new()),
        next_worker: std::sync::atomic::AtomicUsize::new(0),
        queued: std::sync::atomic::AtomicUsize::new(0),
    });
    // The dispatcher holds up to `queue_capacity` waiting jobs and takes no
    // more while it does; one more can sit in the channel, and the next
    // caller waits for room.
    let (jobs, inbox) = mpsc::channel(1);
    let (events, from_workers) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    let mut slots = Vec::new();
    let mut ready = Vec::new();
    for id in 0..shared.config.size {
        let (tx, rx) = mpsc::channel::<Job>(1);
        let (up, is_up) = oneshot::channel();
        tokio::spawn(slot(
            shared.clone(),
            id,
            rx,
            events.clone(),
            up,
            stopped.clone(),
        ));
        slots.push(tx);
        ready.push(is_up);
    }
    for (id, is_up) in ready.into_iter().enumerate() {
        match is_up.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(PoolError::Start(format!("worker {id}: {e}"))),
            Err(_) => {
                return Err(PoolError::Start(format!(
                    "worker {id} stopped before it was ready"
                )))
            }
        }
    }
    tokio::spawn(dispatch(shared.clone(), inbox, from_workers, slots));
    tokio::spawn(cleanup(shared.clone(), stopped));
    Ok(PythonPool { shared, jobs, stop })
}

impl PythonPool {
    /// The pool's label.
    pub fn label(&self) -> Label {
        self.shared.label
    }

    /// Runs `command` with JSON `args` on a free worker (or on the session's
    /// worker), waiting in the queue when all are busy.
    #[observe(pool = self.shared.label, command = command, skip(self))]
    pub async fn execute(
        &self,
        command: &str,
        args: serde_json::Value,
        session: Option<&str>,
    ) -> Result<serde_json::Value, PoolError> {
        if *self.stop.borrow() {
            return Err(PoolError::Shutdown);
        }
        let worker = match session {
            Some(id) => Some(self.session_worker(id)?),
            None => None,
        };
        let correlation_id = poolscope::correlation::current()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let request = proto::ExecuteRequest {
            command: command.to_owned(),
            args: args.to_string(),
            session_id: session.unwrap_or_default().to_owned(),
            correlation_id,
        };
        // Counted until the dispatcher hands it to a worker (or fails it).
        let ahead = self.shared.queued.fetch_add(1, Ordering::Relaxed);
        if self.shared.config.reject_when_full && ahead >= self.shared.config.queue_capacity {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(PoolError::Rejected {
                queue_capacity: self.shared.config.queue_capacity,
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = Msg::Job(Job {
            request,
            worker,
            reply: Caller(reply),
            queued: Instant::now(),
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                // Wait for room. The dispatcher reports the saturation: it
                // knows whether jobs wait with no worker free (a full
                // channel may only mean it has not run yet).
                if self.jobs.send(job).await.is_err() {
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    return Err(PoolError::Shutdown);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(PoolError::Shutdown);
            }
        }
        let (reply, ran_on) = answer.await.map_err(|_| PoolError::Shutdown)?;
        // Known only now: `request.completed` names the worker.
        if let Some(worker) = ran_on {
            poolscope::events::set_worker(&worker);
        }
        reply
    }

    /// Creates a session bound to one worker, alive for `ttl`.
    pub fn create_session(&self, ttl: Duration, metadata: Vec<(String, String)>) -> String {
        let id = poolscope::correlation::CorrelationId::generate().to_string();
        let size = self.shared.config.size;
        let worker = self
            .shared
            .next_worker
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % size;
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                Session {
                    worker,
                    expires: Instant::now() + ttl,
                },
            );
        let metadata = metadata.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self.shared.observed.session_created(&id, ttl, metadata);
        id
    }

    /// Sessions alive.
    pub fn sessions(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The worker a session is bound to (its id in the pool's worker list).
    pub fn session_worker(&self, id: &str) -> Result<usize, PoolError> {
        let sessions = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match sessions.get(id) {
            Some(session) if session.expires > Instant::now() => Ok(session.worker),
            _ => Err(PoolError::UnknownSession(id.to_owned())),
        }
    }

    /// Stops every worker, and takes the pool out of health checks.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.shared.observed.retire();
    }
}

/// Hands jobs to free workers; a session's job waits for its worker.
async fn dispatch(
    shared: Arc<Shared>,
    mut inbox: mpsc::Receiver<Msg>,
    mut from_workers: mpsc::UnboundedReceiver<Msg>,
    slots: Vec<mpsc::Sender<Job>>,
) {
    // Workers announce themselves (`Idle`) once ready.
    let mut idle: VecDeque<usize> = VecDeque::new();
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut stopped = 0;
    loop {
        let msg = tokio::select! {
            biased;
            Some(msg) = from_workers.recv() => msg,
            Some(msg) = inbox.recv(), if waiting.len() < shared.config.queue_capacity => msg,
            else => break,
        };
        match msg {
            Msg::Job(job) => waiting.push_back(job),
            Msg::Idle(id) => idle.push_back(id),
            Msg::Gone(id) => idle.retain(|w| *w != id),
            Msg::Stopped(id) => {
                idle.retain(|w| *w != id);
                stopped += 1;
            }
        }
        // Every worker stopped: nothing will ever run what waits.
        if stopped == slots.len() {
            for job in waiting.drain(..) {
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                job.reply.answer(Err(PoolError::Shutdown), None);
            }
        }
        // Give each free worker the first waiting job it can take.
        let mut i = 0;
        while i < waiting.len() {
            let wanted = waiting[i].worker;
            let pick = match wanted {
                Some(w) => idle.iter().position(|x| *x == w),
                None => (!idle.is_empty()).then_some(0),
            };
            match pick {
                Some(at) => {
                    let Some(worker) = idle.remove(at) else { break };
                    let Some(job) = waiting.remove(i) else { break };
                    let queued = job.queued;
                    match slots[worker].try_send(job) {
                        Ok(()) => {
                            shared.queued.fetch_sub(1, Ordering::Relaxed);
                            shared.observed.queue_wait(queued.elapsed());
                        }
                        // Idle workers have room; should one not, keep the job.
                        Err(mpsc::error::TrySendError::Full(job)) => {
                            waiting.insert(i, job);
                            i += 1;
                        }
                        // The slot stopped (the pool is shutting down).
                        Err(mpsc::error::TrySendError::Closed(job)) => {
                            shared.queued.fetch_sub(1, Ordering::Relaxed);
                            job.reply.answer(Err(PoolError::Shutdown), None);
                        }
                    }
                }
                None => i += 1,
            }
        }
        let depth = waiting.len() + inbox.len();
        shared.observed.queue_depth(depth);
        // Requests wait and no worker is free: saturated. A job that waits
        // for its session's busy worker while others are free is not. The
        // pool reports an episode once, and its end after a hold.
        if waiting.is_empty() || !idle.is_empty() {
            shared.observed.saturation_ended();
        } else {
            shared.observed.saturated(depth, idle.len());
        }
    }
}

/// Removes expired sessions on a timer.
async fn cleanup(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(shared.config.cleanup_every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let started = Instant::now();
        let now = Instant::now();
        let removed = {
            let mut sessions = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let before = sessions.len();
            sessions.retain(|_, s| s.expires > now);
            before - sessions.len()
        };
        if removed > 0 {
            shared.observed.sessions_cleaned(removed, started.elapsed());
        }
    }
}

/// How long a crash report waits for the worker's stderr to end after its
/// exit. It ends at once unless something the worker started still holds
/// the pipe open; the report must not wait for that.
const STDERR_CLOSE: Duration = Duration::from_secs(10);

/// What a crash report says of what the worker was doing.
#[derive(Default)]
struct Last {
    /// The last command it was given.
    command: Option<String>,
    /// The correlation id of the request it is running, if any.
    in_flight: Option<String>,
}

struct Running {
    child: Child,
    /// The worker exits when this pipe closes: however the host ends, even
    /// by SIGKILL, no worker outlives it.
    _stdin: Option<ChildStdin>,
    pid: Option<u32>,
    client: Client,
    /// Where the worker listens: a broken channel is reconnected here.
    port: u16,
    stderr: WorkerStderr,
    started: Instant,
}

/// Spawns worker `id` and waits until it is ready. Its process is bound to
/// the host's life (`bind_to_host`, and its stdin); its stderr goes to the
/// host's logs.
async fn spawn_worker(shared: &Shared, id: usize, started: Instant) -> Result<Running, PoolError> {
    let deadline = tokio::time::Instant::now() + shared.config.start_timeout;
    let mut command = Command::new(&shared.config.python);
    command
        .arg(&shared.config.script)
        .args(["--id", &id.to_string(), "--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    bind_to_host(command.as_std_mut());
    let mut child = command
        .spawn()
        .map_err(|e| PoolError::Start(format!("cannot run `{}`: {e}", shared.config.python)))?;
    let pid = child.id();
    let stdin = child.stdin.take();
    let stderr = match child.stderr.take() {
        Some(pipe) => WorkerStderr::read(pipe, StderrSource::new(&shared.label, id, pid)),
        None => return Err(PoolError::Start("no stderr".into())),
    };
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| PoolError::Start("no stdout".into()))?;
    let mut first = String::new();
    let mut reader = BufReader::new(stdout);
    let port = match tokio::time::timeout_at(deadline, reader.read_line(&mut first)).await {
        Ok(Ok(n)) if n > 0 => first
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse::<u16>().ok()),
        _ => None,
    };
    let Some(port) = port else {
        // It may still be running (silent, or printing something else):
        // stop it before reading how it ended.
        let _ = child.start_kill();
        let status = child.wait().await;
        return Err(PoolError::Crash(Box::new(
            crash_of(
                status,
                &Watch {
                    stderr,
                    started,
                    pid,
                },
                Last::default(),
            )
            .await,
        )));
    };
    // Keep draining stdout so the worker never blocks on a full pipe.
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink).await;
    });
    let ready = async {
        let mut client = connect(port)
            .await
            .map_err(|e| PoolError::Start(format!("cannot connect to worker {id}: {e}")))?;
        client.ready(proto::ReadyRequest {}).await?;
        Ok::<_, PoolError>(client)
    };
    // On an error `child` is dropped, which kills it.
    let client = match tokio::time::timeout_at(deadline, ready).await {
        Ok(client) => client?,
        Err(_) => {
            return Err(PoolError::Start(format!(
                "worker {id} did not answer `Ready` within {:?} of its start",
                shared.config.start_timeout
            )))
        }
    };
    Ok(Running {
        child,
        _stdin: stdin,
        pid,
        client,
        port,
        stderr,
        started,
    })
}

/// How a worker's process ended, and the answer still owed to the caller
/// whose request it was running.
struct Ended {
    crash: WorkerCrash,
    reason: String,
    owed: Option<(Caller, Reply)>,
}

impl Ended {
    /// It died; the request it was running, if any, fails with the crash.
    fn died(crash: WorkerCrash, caller: Option<Caller>) -> Ended {
        Ended {
            reason: crash.to_string(),
            owed: caller.map(|caller| (caller, Err(PoolError::Crash(Box::new(crash.clone()))))),
            crash,
        }
    }

    /// The pool killed it because its request ran past the timeout; the
    /// caller gets the timeout.
    fn killed_after_timeout(crash: WorkerCrash, caller: Caller, timeout: Reply) -> Ended {
        Ended {
            reason: format!("{crash} ({KILLED_AFTER_TIMEOUT})"),
            owed: Some((caller, timeout)),
            crash,
        }
    }
}

/// One worker slot: (re)spawns its process and runs the jobs it is given.
async fn slot(
    shared: Arc<Shared>,
    id: usize,
    mut jobs: mpsc::Receiver<Job>,
    events: mpsc::UnboundedSender<Msg>,
    up: oneshot::Sender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut up = Some(up);
    let mut backoff = shared.config.restart_backoff;
    loop {
        let stopping = *stop.borrow();
        if stopping {
            let _ = events.send(Msg::Stopped(id));
            return;
        }
        let worker = shared.observed.worker(id);
        let spawned = Instant::now();
        let mut running = match spawn_worker(&shared, id, spawned).await {
            Ok(running) => running,
            Err(err) => {
                worker.start_failed(spawned.elapsed(), err.error_context());
                if let Some(up) = up.take() {
                    let _ = up.send(Err(err.to_string()));
                    return;
                }
                worker.set_state(WorkerState::Crashed);
                if pause(backoff, &mut stop).await {
                    let _ = events.send(Msg::Stopped(id));
                    return;
                }
                backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
                continue;
            }
        };
        // `worker.started` with the pid; the memory sampler reads the
        // worker's RSS from /proc/<pid>.
        worker.started(running.pid, spawned.elapsed());
        if let Some(up) = up.take() {
            let _ = up.send(Ok(()));
        }
        let _ = events.send(Msg::Idle(id));
        let mut last = Last::default();
        let watch = running.watch();
        let Running {
            child,
            client,
            port,
            ..
        } = &mut running;
        // Serve until the process dies or the pool stops.
        let ended = loop {
            tokio::select! {
                changed = stop.changed() => {
                    let stopping = changed.is_err() || *stop.borrow();
                    if stopping {
                        let _ = child.start_kill();
                        worker.set_state(WorkerState::Stopped);
                        let _ = events.send(Msg::Stopped(id));
                        return;
                    }
                }
                status = child.wait() => {
                    break Ended::died(crash_of(status, &watch, std::mem::take(&mut last)).await, None);
                }
                job = jobs.recv() => {
                    let Some(job) = job else { return };
                    worker.set_state(WorkerState::Busy);
                    last = Last {
                        command: Some(job.request.command.clone()),
                        in_flight: Some(job.request.correlation_id.clone()),
                    };
                    let reply = {
                        let call = execute(client, job.request, shared.config.request_timeout);
                        tokio::pin!(call);
                        tokio::select! {
                            reply = &mut call => reply,
                            status = child.wait() => {
                                let crash = crash_of(status, &watch, std::mem::take(&mut last)).await;
                                break Ended::died(crash, Some(job.reply));
                            }
                        }
                    };
                    if let Err(PoolError::Grpc(status)) = &reply {
                        if let Some(crash) = recover(status, child, client, *port, &watch, &mut last).await {
                            break Ended::died(crash, Some(job.reply));
                        }
                    }
                    // gRPC deadlines do not stop a Python handler: a worker
                    // that timed out is still busy with the old command.
                    // Replace it rather than queue work behind it.
                    if matches!(reply, Err(PoolError::Timeout(_))) {
                        let _ = child.start_kill();
                        let crash = exit_of(child, &watch, &mut last).await;
                        break Ended::killed_after_timeout(crash, job.reply, reply);
                    }
                    last.in_flight = None;
                    job.reply.answer(reply, Some(id));
                    worker.set_state(WorkerState::Available);
                    backoff = shared.config.restart_backoff;
                    let _ = events.send(Msg::Idle(id));
                }
            }
        };
        // Reported before the caller hears of it: whoever holds the error
        // finds the worker crashed and the crash counted.
        let _ = events.send(Msg::Gone(id));
        worker.crashed(&ended.reason, *ended.crash.context.clone());
        if let Some((caller, answer)) = ended.owed {
            caller.answer(answer, Some(id));
        }
        if pause(backoff, &mut stop).await
            || held(shared.config.restart_gate.as_deref(), &mut stop).await
        {
            let _ = events.send(Msg::Stopped(id));
            return;
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

/// What a crash report reads of a running worker, apart from its process.
struct Watch {
    stderr: WorkerStderr,
    started: Instant,
    pid: Option<u32>,
}

impl Running {
    fn watch(&self) -> Watch {
        Watch {
            stderr: self.stderr.clone(),
            started: self.started,
            pid: self.pid,
        }
    }
}

impl Watch {
    /// A worker lost while its process still ran.
    fn lost(&self, last: Last) -> WorkerCrash {
        self.context(
            WorkerCrash::lost(&self.stderr.kept(), self.started.elapsed(), last.command),
            last.in_flight,
        )
    }

    fn context(&self, crash: WorkerCrash, in_flight: Option<String>) -> WorkerCrash {
        let crash = crash.with_in_flight(in_flight);
        match self.pid {
            Some(pid) => crash.with_pid(pid),
            None => crash,
        }
    }
}

/// Waits for a permit of the restart gate, if there is one, unless the pool
/// stops first; `true` when it stopped.
async fn held(gate: Option<&tokio::sync::Semaphore>, stop: &mut watch::Receiver<bool>) -> bool {
    let Some(gate) = gate else { return false };
    tokio::select! {
        permit = gate.acquire() => {
            // A closed gate lets every restart through.
            if let Ok(permit) = permit {
                permit.forget();
            }
            false
        }
        _ = stop.wait_for(|stopped| *stopped) => true,
    }
}

/// Sleeps `backoff` unless the pool stops first; `true` when it stopped.
async fn pause(backoff: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(backoff) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    };
    stopped || stop.has_changed().is_err() || *stop.borrow()
}

/// How long a process that is exiting is given to finish. The kernel is
/// already tearing it down, so this only bounds a process stuck in the
/// kernel (uninterruptible I/O), which then counts as lost.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// After a failed call: `Some(crash)` when the worker is gone, `None` when
/// it can serve again. A broken channel means the process is exiting or
/// has exited (its exit status says how), or it lives and the connection
/// broke (garbage on the wire, a reset), in which case the connection may
/// still look open to the next call, which would fail with it: reconnect
/// first. A live worker that cannot be reached again is lost.
async fn recover(
    status: &tonic::Status,
    child: &mut Child,
    client: &mut Client,
    port: u16,
    watch: &Watch,
    last: &mut Last,
) -> Option<WorkerCrash> {
    let gone = matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown
    );
    let broken = std::error::Error::source(status).is_some();
    if !(gone || broken) {
        return None;
    }
    if !alive(child) {
        return Some(exit_of(child, watch, last).await);
    }
    if let Ok(Ok(fresh)) = tokio::time::timeout(Duration::from_secs(5), connect(port)).await {
        *client = fresh;
        return None;
    }
    // Unreachable: it began to exit meanwhile, or it runs and is lost.
    if !alive(child) {
        return Some(exit_of(child, watch, last).await);
    }
    let _ = child.start_kill();
    Some(watch.lost(std::mem::take(last)))
}

/// The crash of a process that is exiting, once it has exited (lost if it
/// has not within [`EXIT_GRACE`]).
async fn exit_of(child: &mut Child, watch: &Watch, last: &mut Last) -> WorkerCrash {
    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => crash_of(status, watch, std::mem::take(last)).await,
        Err(_) => {
            let _ = child.start_kill();
            watch.lost(std::mem::take(last))
        }
    }
}

/// Whether the process runs and is not exiting. Linux marks a task exiting
/// (`PF_EXITING` in `/proc/<pid>/stat`) before it closes its files, so a
/// channel broken by the worker's death always finds it exiting or exited:
/// its state decides, not how soon its exit is noticed. Without `/proc` it
/// counts as alive, and a reconnect decides.
fn alive(child: &mut Child) -> bool {
    const PF_EXITING: u64 = 0x4;
    if !matches!(child.try_wait(), Ok(None)) {
        return false;
    }
    let Some(pid) = child.id() else { return false };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`; the
    // command name may hold spaces and parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let exited = matches!(fields.first(), Some(&("Z" | "X" | "x")));
    let exiting = fields
        .get(6)
        .and_then(|flags| flags.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0);
    !(exited || exiting)
}

async fn crash_of(
    status: std::io::Result<std::process::ExitStatus>,
    watch: &Watch,
    last: Last,
) -> WorkerCrash {
    let uptime = watch.started.elapsed();
    let stderr = watch.stderr.complete(STDERR_CLOSE).await;
    let crash = match status {
        Ok(status) => WorkerCrash::from_status(status, &stderr, uptime, last.command),
        Err(_) => WorkerCrash::exited(-1, &stderr, uptime, last.command),
    };
    watch.context(crash, last.in_flight)
}

/// Whether a failed call ran out of time: the worker's deadline
/// (`DEADLINE_EXCEEDED`), or tonic's client-side timer, which covers the
/// wait for the reply's headers and answers `CANCELLED` with the timer as
/// its source.
fn ran_out(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::DeadlineExceeded => true,
        tonic::Code::Cancelled => {
            std::iter::successors(std::error::Error::source(status), |e| e.source())
                .any(|e| e.is::<tonic::TimeoutExpired>())
        }
        _ => false,
    }
}

async fn execute(client: &mut Client, request: proto::ExecuteRequest, timeout: Duration) -> Reply {
    let correlation_id = request.correlation_id.clone();
    let mut request = tonic::Request::new(request);
    if let Ok(value) = correlation_id.parse() {
        request.metadata_mut().insert("x-correlation-id", value);
    }
    request.set_timeout(timeout);
    let response = match tokio::time::timeout(
        timeout + Duration::from_millis(500),
        client.execute(request),
    )
    .await
    {
        Ok(Err(status)) if ran_out(&status) => return Err(PoolError::Timeout(timeout)),
        Ok(response) => response?,
        Err(_) => return Err(PoolError::Timeout(timeout)),
    };
    // The worker echoes the id in its reply metadata.
    let echoed = response
        .metadata()
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let reply = response.into_inner();
    if let Some(error) = reply.error {
        let traceback = PythonTraceback::parse(&error.traceback)
            .unwrap_or_else(|| PythonTraceback {
                exception_type: error.exception_type.clone(),
                message: error.message.clone(),
                formatted: error.traceback.clone(),
                ..PythonTraceback::default()
            })
            .with_notes(error.notes);
        return Err(PoolError::Python {
            error: Box::new(PythonError::new(traceback)),
            correlation_id: echoed,
        });
    }
    serde_json::from_str(&reply.result).map_err(|e| PoolError::Json(e.to_string()))
}
