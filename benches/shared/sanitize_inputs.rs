//! The texts the sanitizer benches read (`sanitize.rs`, `sanitize_callgrind.rs`).

/// A 1 KiB log line, with a JSON password or without.
pub fn log_line(secret: bool) -> String {
    let mut line = String::from(
        "2026-11-28T00:00:00.000Z INFO poolscope::request: request completed pool=python command=predict \
         correlation_id=4bf92f3577b34da6a3ce929d0e0e4736 duration_ms=12.5 outcome=ok worker=3 ",
    );
    if secret {
        line.push_str(
            "args={\"user\": \"ann\", \"password\": \"hunter2\", \"model\": \"resnet\"} ",
        );
    }
    while line.len() < 1024 {
        line.push_str("queue_wait_ms=0.4 retries=0 batch=16 shape=[1, 3, 224, 224] ");
    }
    line.truncate(1024);
    line
}

/// A 64 KiB Python traceback, with a connection string and a password
/// every 50 frames or without.
pub fn traceback(secret: bool) -> String {
    let mut text = String::from("Traceback (most recent call last):\n");
    let mut i = 0;
    while text.len() < 64 * 1024 {
        text.push_str(&format!(
            "  File \"/srv/app/handlers/module_{i}.py\", line {}, in handle_{i}\n    result = process(batch, options, retries={})\n",
            i * 7 + 3,
            i % 5
        ));
        if secret && i % 50 == 0 {
            text.push_str(
                "    connect(\"postgres://app:hunter2@db:5432/app\", password=\"hunter2\")\n",
            );
        }
        i += 1;
    }
    text.push_str("ValueError: batch could not be processed\n");
    text
}
