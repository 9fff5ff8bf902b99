//! Webhooks and command hooks from the configuration, each on a worker thread of its own.

use std::time::Duration;

use drfailover_notify::{AsyncSink, CommandHook};

use crate::{Config, Error};

/// Queue capacity of each webhook/hook worker.
const SINK_QUEUE: usize = 256;
/// How long closing the client waits for queued webhook/hook deliveries.
const SINK_DRAIN: Duration = Duration::from_secs(2);

/// Start one worker per configured webhook and hook command.
pub(crate) fn from_config(config: &Config) -> Result<Vec<AsyncSink>, Error> {
    let mut sinks = Vec::new();
    let spawn_error = |e: std::io::Error| Error::System(format!("start event worker thread: {e}"));
    #[cfg(feature = "webhook")]
    for target in &config.webhooks {
        use drfailover_notify::{Webhook, WebhookFormat};
        let format = if target.slack {
            WebhookFormat::Slack
        } else {
            WebhookFormat::Generic
        };
        let mut hook = Webhook::new(target.url.clone(), format);
        hook.timeout = config.webhook_timeout;
        hook.connect_timeout = config.webhook_timeout.min(hook.connect_timeout);
        let sink = AsyncSink::spawn("webhook", SINK_QUEUE, SINK_DRAIN, move |e| {
            if let Err(err) = hook.send(e) {
                log::warn!(target: "drfailover", "{err}");
            }
        })
        .map_err(spawn_error)?;
        sinks.push(sink);
    }
    for program in &config.hook_commands {
        let mut hook = CommandHook::new(program.clone());
        hook.timeout = config.hook_timeout;
        let sink = AsyncSink::spawn("hook", SINK_QUEUE, SINK_DRAIN, move |e| match hook.run(e) {
            Ok(0) => {}
            Ok(code) => log::warn!(target: "drfailover", "hook {} exited with {code}", hook.program.display()),
            Err(err) => log::warn!(target: "drfailover", "{err}"),
        })
        .map_err(spawn_error)?;
        sinks.push(sink);
    }
    Ok(sinks)
}
