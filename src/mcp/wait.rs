//! Waiting for a run on behalf of a `tools/call` (`run_task` with `wait_seconds`, `cancel_run`):
//! runs on the request's own I/O thread, never on a worker. With a progress token and a client
//! that accepts event streams, the answer is an SSE stream carrying `notifications/progress`
//! about once a second and then the response; otherwise a plain JSON response when the run ends
//! or the wait runs out. A client that goes away does not stop the run.

use super::tools::Tool;
use crate::http::sse::SseStream;
use crate::http::Reply;
use crate::tasks::catalog::{Catalog, CatalogSource};
use crossbeam_channel::{after, select, tick, Receiver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How much of a run's output a run tool returns (the end of it).
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// A `tools/call` whose answer waits for a run to end.
pub struct RunWait {
    pub rpc_id: Value,
    pub tool: &'static Tool,
    pub run_id: i64,
    /// Signalled when the run has been recorded as finished (subscribed before the run could end).
    pub finished: Receiver<()>,
    pub wait: Duration,
    pub progress_token: Option<Value>,
    /// The client accepts `text/event-stream`.
    pub sse: bool,
    pub source: CatalogSource,
}

impl RunWait {
    /// The tool result for the run as it stands now.
    fn result(&self, catalog: Option<&Catalog>, waited: Duration) -> Value {
        let Some(catalog) = catalog else {
            return super::tool_error(
                "internal error: the database is not available; see the server log",
            );
        };
        match catalog.run(self.run_id, Some(OUTPUT_TAIL)) {
            Ok(mut value) => {
                let status = value["run"]["status"].as_str().unwrap_or("").to_string();
                let mut text = (self.tool.summary)(&value);
                if !catalog
                    .run_status(self.run_id)
                    .is_some_and(|s| s.is_terminal())
                {
                    let note = format!(
                        "still {status} after waiting {} s; it keeps going — poll claudecron_get_run with runId {}",
                        waited.as_secs(),
                        self.run_id
                    );
                    text.push(' ');
                    text.push_str(&note);
                    if let Some(obj) = value.as_object_mut() {
                        obj.insert("note".into(), note.into());
                    }
                }
                super::tool_result(&text, value)
            }
            Err(e) => super::tool_error(&e.to_string()),
        }
    }

    /// Wait, then answer on `request`. Returns the HTTP status and a label for the log line.
    pub fn respond(self, request: tiny_http::Request) -> (u16, &'static str) {
        let catalog = self.source.open().ok();
        let ended = |c: Option<&Catalog>| {
            c.and_then(|c| c.run_status(self.run_id))
                .is_some_and(|s| s.is_terminal())
        };
        let started = Instant::now();
        let deadline = after(self.wait);
        let done_already = ended(catalog.as_ref());
        let streaming = self.sse && self.progress_token.is_some() && !done_already;
        if !streaming {
            if !done_already {
                select! {
                    recv(self.finished) -> _ => {},
                    recv(deadline) -> _ => {},
                }
            }
            let body = json!({"jsonrpc": "2.0", "id": self.rpc_id, "result": self.result(catalog.as_ref(), started.elapsed())});
            Reply::json(200, &body).send(request);
            return (200, " (after waiting for the run)");
        }
        let mut stream = match SseStream::open(request, &[]) {
            Ok(s) => s,
            Err(_) => return (200, " (client left before the stream opened)"),
        };
        let ticker = tick(Duration::from_secs(1));
        let token = self.progress_token.clone().unwrap_or(Value::Null);
        let mut step = 0u64;
        loop {
            select! {
                recv(self.finished) -> _ => break,
                recv(deadline) -> _ => break,
                recv(ticker) -> _ => {
                    step += 1;
                    let status = catalog.as_ref().and_then(|c| c.run_status(self.run_id));
                    if status.is_some_and(|s| s.is_terminal()) {
                        break;
                    }
                    let status = status.map(|s| s.as_str()).unwrap_or("unknown");
                    let note = json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": token,
                            "progress": step,
                            "total": self.wait.as_secs().max(step),
                            "message": format!("run {} {status} for {} s", self.run_id, started.elapsed().as_secs()),
                        }
                    });
                    if stream.send(None, &note.to_string()).is_err() {
                        log::info!("client left while waiting for run {}; the run goes on", self.run_id);
                        return (200, " (client left; the run goes on)");
                    }
                }
            }
        }
        let body = json!({"jsonrpc": "2.0", "id": self.rpc_id, "result": self.result(catalog.as_ref(), started.elapsed())});
        let _ = stream.send(None, &body.to_string());
        stream.close();
        (200, " (event stream with progress)")
    }
}
