//! Carrying out `run_task` and `cancel_run` (both eras) and waiting for the run on behalf of the
//! `tools/call`: the wait runs on the request's own connection thread, holding no lane. With a progress token and a client
//! that accepts event streams, the answer is an SSE stream carrying `notifications/progress`
//! about once a second and then the response; otherwise a plain JSON response when the run ends
//! or the wait runs out. On the 2026-07-28 path the answer carries `resultType`, a client that
//! accepts event streams always gets one (keep-alive comments without a progress token, so a
//! disconnect is seen: it cancels the request, never the run), and a request with a `logLevel`
//! gets a `notifications/message` when the run ends. A client that goes away does not stop the run.

use super::tools::{self, Tool};
use super::{as_accepted, op_error, tool_error, tool_result, Mcp, Outcome};
use crate::http::sse::SseStream;
use crate::http::Reply;
use crate::http::{accepts, HttpRequest};
use crate::tasks::catalog::{Catalog, CatalogSource};
use crossbeam_channel::{after, select, tick, Receiver};
use serde_json::{json, Map, Value};
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
    /// Served on the 2026-07-28 path.
    pub modern: bool,
    /// The request's `_meta` log level (2026-07-28): a run-finished message at or above it.
    pub log_level: Option<usize>,
    /// The client takes `resource_link` content (2025-06-18 and later).
    pub links: bool,
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

    /// The final response.
    fn response(&self, catalog: Option<&Catalog>, waited: Duration) -> Value {
        let mut result = self.result(catalog, waited);
        if !self.links {
            super::strip_links(&mut result);
        }
        if self.modern {
            result["resultType"] = "complete".into();
        }
        crate::obj!("jsonrpc": "2.0", "id": self.rpc_id.clone(), "result": result)
    }

    /// The `notifications/message` about the run's end, when the request asked for logs at a
    /// level it reaches.
    fn log_message(&self, catalog: Option<&Catalog>) -> Option<Value> {
        let min = self.log_level?;
        let status = catalog?.run_status(self.run_id)?;
        let level = super::run_log_level(status);
        if super::session::level_rank(level)? < min {
            return None;
        }
        Some(json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": level, "logger": "claudecron", "data": {
                "event": "run_finished", "run_id": self.run_id, "status": status,
            }},
        }))
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
        let streaming = self.sse && (self.progress_token.is_some() || self.modern) && !done_already;
        if !streaming {
            if !done_already {
                select! {
                    recv(self.finished) -> _ => {},
                    recv(deadline) -> _ => {},
                }
            }
            let body = self.response(catalog.as_ref(), started.elapsed());
            Reply::json(200, &body).send(request);
            return (200, " (after waiting for the run)");
        }
        let mut stream = match SseStream::open(request, &[]) {
            Ok(s) => s,
            Err(_) => return (200, " (client left before the stream opened)"),
        };
        let ticker = tick(Duration::from_secs(1));
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
                    let sent = match &self.progress_token {
                        Some(token) => stream.send(None, &self.progress(token, step, status, started).to_string()),
                        None if step.is_multiple_of(super::session::KEEP_ALIVE.as_secs()) => stream.keep_alive(),
                        None => Ok(()),
                    };
                    if sent.is_err() {
                        log::info!("client left while waiting for run {}; the run goes on", self.run_id);
                        return (200, " (client left; the run goes on)");
                    }
                }
            }
        }
        if let Some(message) = self.log_message(catalog.as_ref()) {
            let _ = stream.send(None, &message.to_string());
        }
        let body = self.response(catalog.as_ref(), started.elapsed());
        let _ = stream.send(None, &body.to_string());
        stream.close();
        (200, " (event stream with progress)")
    }

    fn progress(
        &self,
        token: &Value,
        step: u64,
        status: Option<crate::tasks::runs::RunStatus>,
        started: Instant,
    ) -> Value {
        let status = status.map(|s| s.as_str()).unwrap_or("unknown");
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {
                "progressToken": token,
                "progress": step,
                "total": self.wait.as_secs().max(step),
                "message": format!("run {} {status} for {} s", self.run_id, started.elapsed().as_secs()),
            }
        })
    }
}

impl Mcp {
    /// `run_task` and `cancel_run` (the tools that act through the engine and may wait for a
    /// run) carried out: None for every other tool.
    pub(super) fn start_run<'c>(
        &self,
        tool: &'static tools::Tool,
        params: &Value,
        catalog: Option<&'c Catalog>,
    ) -> Option<RunStart<'c>> {
        let tools::Handler::Run(handler) = tool.handler else {
            return None;
        };
        let empty = Map::new();
        let args = params
            .get("arguments")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let Some(catalog) = catalog else {
            return Some(RunStart::Answer(tool_error(&self.no_catalog())));
        };
        Some(match handler(catalog, args) {
            Ok(call) => RunStart::Started(call, catalog),
            Err(e) => RunStart::Answer(op_error(tool.name, &e)),
        })
    }

    /// The wait for a started run's end on the request's own thread, or (Err) the answer now
    /// when the call does not wait.
    pub(super) fn run_wait(
        &self,
        id: &Value,
        tool: &'static tools::Tool,
        params: &Value,
        call: tools::RunCall,
        catalog: &Catalog,
        sse: bool,
    ) -> Result<Box<RunWait>, Value> {
        let Some(finished) = call.finished.filter(|_| !call.wait.is_zero()) else {
            return Err(match catalog.run(call.run_id, Some(OUTPUT_TAIL)) {
                Ok(v) => tool_result(&(tool.summary)(&v), v),
                Err(e) => op_error(tool.name, &e),
            });
        };
        let progress_token = params
            .pointer("/_meta/progressToken")
            .filter(|t| t.is_string() || t.is_number())
            .cloned();
        Ok(Box::new(RunWait {
            rpc_id: id.clone(),
            tool,
            run_id: call.run_id,
            finished,
            wait: call.wait,
            progress_token,
            sse,
            source: self.source.clone(),
            modern: false,
            log_level: None,
            links: true,
        }))
    }

    /// `run_task` and `cancel_run` on the 2025-era path: None for every other tool.
    pub(super) fn run_tools(
        &self,
        req: &HttpRequest,
        id: &Value,
        params: &Value,
        catalog: Option<&Catalog>,
        links: bool,
    ) -> Option<Outcome> {
        let tool = tools::find(params.get("name").and_then(Value::as_str)?)?;
        let answer = |mut result: Value| {
            if !links {
                super::strip_links(&mut result);
            }
            Some(Outcome::Reply(as_accepted(
                req,
                Reply::json(
                    200,
                    &crate::obj!("jsonrpc": "2.0", "id": id.clone(), "result": result),
                ),
            )))
        };
        match self.start_run(tool, params, catalog)? {
            RunStart::Answer(result) => answer(result),
            RunStart::Started(call, catalog) => {
                let sse = req
                    .header("accept")
                    .is_some_and(|a| accepts(a, "text/event-stream"));
                match self.run_wait(id, tool, params, call, catalog, sse) {
                    Ok(mut wait) => {
                        wait.links = links;
                        Some(Outcome::WaitForRun(wait))
                    }
                    Err(result) => answer(result),
                }
            }
        }
    }
}

/// A run tool carried out: its answer now, or the started run.
pub(super) enum RunStart<'c> {
    Answer(Value),
    Started(tools::RunCall, &'c Catalog),
}
