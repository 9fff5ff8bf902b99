//! `bootstrap`: the Lambda function for the `provided.al2023` runtime. Reads its
//! configuration (and the probe's secret, when configured) once per execution environment —
//! again at the next invocation when that failed — then handles one event at a time on the
//! runtime's thread (the work is blocking and bounded by each invocation's deadline).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use drfailover_dns::aws::credentials::process_env;
use drfailover_lambda::handler::{self, Services};
use drfailover_lambda::{logger, Config, LambdaError};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

/// The configuration and clients, or why there are none (returned by the invocation that
/// tried again and failed again).
type State = Result<(Config, Services), LambdaError>;

/// How long reading the probe's secret may take during setup.
const SETUP_BUDGET: Duration = Duration::from_secs(10);

/// Read the configuration and make the clients. Blocks at most until `deadline` (only to
/// fetch the probe's secret).
fn setup(deadline: Instant) -> State {
    let config = Config::from_env(&process_env)?;
    let services = Services::new(&config, &process_env, deadline)?;
    log::info!(
        "configured: primary {} ({}), secondary {} ({}), record {} in zone {}, promote {}",
        config.primary.instance_id,
        config.primary.endpoint,
        config.secondary.instance_id,
        config.secondary.endpoint,
        config.record_name,
        config.hosted_zone_id,
        config.promote_read_replica
    );
    Ok((config, services))
}

/// The invocation's deadline as an `Instant`. Lambda gives wall-clock milliseconds since
/// the epoch. The local emulator (`cargo lambda watch`) sends the function's timeout in
/// milliseconds instead (`600000`); a value that small (before 2001) cannot be a deadline,
/// so it is read as a duration from now.
fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    const EARLIEST_DEADLINE_MS: u64 = 1_000_000_000_000;
    if context.deadline < EARLIEST_DEADLINE_MS {
        return Instant::now() + Duration::from_millis(context.deadline);
    }
    let left = context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + left
}

fn diagnostic(error: &LambdaError) -> Diagnostic {
    Diagnostic {
        error_type: error.kind().to_string(),
        error_message: error.to_string(),
    }
}

fn main() -> Result<(), lambda_runtime::Error> {
    logger::init();
    let state: Arc<Mutex<State>> = Arc::new(Mutex::new(setup(Instant::now() + SETUP_BUDGET)));
    if let Err(e) = &*state.lock().unwrap_or_else(|e| e.into_inner()) {
        log::error!("{e}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let state = state.clone();
            async move {
                let deadline = deadline_of(&event.context);
                log::debug!(
                    "invocation {}: {} ms left",
                    event.context.request_id,
                    deadline
                        .saturating_duration_since(Instant::now())
                        .as_millis()
                );
                let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
                if guard.is_err() {
                    // A secret that could not be read (throttling, a network hiccup) may be
                    // readable now; a configuration error is found again at no cost.
                    *guard = setup(deadline.min(Instant::now() + SETUP_BUDGET));
                }
                let (config, services) = match &mut *guard {
                    Ok((config, services)) => (config, services),
                    Err(e) => {
                        log::error!("{e}");
                        return Err(diagnostic(e));
                    }
                };
                handler::handle(&event.payload, config, services, deadline).map_err(|e| {
                    log::error!("{}: {e}", e.kind());
                    diagnostic(&e)
                })
            }
        },
    )))
}
