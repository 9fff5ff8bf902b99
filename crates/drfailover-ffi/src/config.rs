//! `dr_config`: the DSN's keys, settable one by one.

use std::os::raw::{c_char, c_void};

use drfailover_conn::Config;

use crate::events::{dr_event_cb, dr_finalizer, Subscription};
use crate::guard::{self, c_str, out_ptr, Failure, MAX_SHORT};
use crate::status::dr_status;

/// A client configuration under construction. Create with `dr_config_new`, free with
/// `dr_config_free`. Not thread-safe: use one config from one thread at a time.
pub struct dr_config {
    pub(crate) config: Config,
    pub(crate) subscribers: Vec<std::sync::Arc<Subscription>>,
}

/// Create an empty configuration (no endpoints, default timeouts) in `*out`. The caller owns
/// it and frees it with `dr_config_free`. Does not block.
///
/// # Safety
/// `out` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn dr_config_new(out: *mut *mut dr_config) -> dr_status {
    guard::status(|| {
        out_ptr(out, "out")?;
        let cfg = Box::new(dr_config {
            config: Config::new(),
            subscribers: Vec::new(),
        });
        // SAFETY: `out` was checked non-NULL and is writable per the contract.
        unsafe { *out = Box::into_raw(cfg) };
        Ok(())
    })
}

/// Set one key, with the same vocabulary as the DSN's query string. `host`: `"host[:port]"`
/// appends an endpoint (priority in call order); `dsn`: a whole DSN that replaces everything
/// set so far (set it first, then override keys). Errors name the key; an unknown key's error
/// lists every known key. `DR_E_CONFIG` also for a NUL byte (`%00` in a `dsn`) in user,
/// password or database. `password_file` and `defaults_file` are read here: a regular file
/// of at most 4 KiB (password) or 64 KiB (option file), never more than that read; a FIFO,
/// device, directory or larger file is `DR_E_CONFIG` at once, naming the key and the file
/// (never its content). Blocks only on that local file I/O. `secret_arn` (AWS Secrets
/// Manager) and `auth=rds_iam` (RDS IAM tokens) are only recorded here: the secret is fetched
/// by `dr_connect` / `dr_connect_config` (bounded, 5 s), where a missing, deleted or malformed secret is
/// `DR_E_CONFIG` naming the key and the ARN, never the value; see docs/aws-credentials.md.
///
/// Keys (generated from the library's key table; defaults in docs/configuration.md):
/// `user`, `password`, `password_env`, `password_file`, `group`, `defaults_file`, `database`,
/// `host`, `dsn`, `connect_timeout_ms`, `probe_interval_ms`, `probe_timeout_ms`,
/// `failover_probe_interval_ms`, `fall`, `rise`, `failover_timeout_ms`, `read_timeout_ms`,
/// `pool_size`, `init`, `failback`, `event_queue`, `ssl_mode`, `ssl_ca`, `nameserver`,
/// `dns_min_ttl_ms`, `dns_max_ttl_ms`, `dns_timeout_ms`, `webhook_url`, `slack_webhook_url`,
/// `webhook_timeout_ms`, `hook_command`, `hook_timeout_ms`, `secret_arn`, `secret_region`,
/// `secret_endpoint`, `auth`, `region`.
///
/// # Safety
/// `config` must be NULL or a live `dr_config`; `key` and `value` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn dr_config_set(
    config: *mut dr_config,
    key: *const c_char,
    value: *const c_char,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract, a non-NULL `config` is a live dr_config used by one thread.
        let cfg = unsafe { config.as_mut() }.ok_or_else(|| Failure::invalid("config is NULL"))?;
        // SAFETY: per the contract.
        let key = unsafe { c_str(key, "key", MAX_SHORT) }?;
        // SAFETY: per the contract.
        let value = unsafe { c_str(value, "value", MAX_SHORT) }?;
        cfg.config.set(key, value).map_err(Failure::from)
    })
}

/// Free a configuration. NULL is ignored. Must not be called twice on the same pointer.
///
/// # Safety
/// `config` must be NULL or a `dr_config` from `dr_config_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dr_config_free(config: *mut dr_config) {
    guard::value((), || {
        if !config.is_null() {
            // SAFETY: created by Box::into_raw in dr_config_new and not freed yet.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

symbol_version!(
    dr_config_new,
    dr_config_set,
    dr_config_free,
    dr_config_on_event
);

/// Like `dr_on_event`, but registered on a configuration, so the callback also sees the
/// events of start-up (the first `DR_EVENT_CONNECTED`). The client created from `config`
/// takes over the registration; freeing the config without connecting calls `finalizer`.
///
/// # Safety
/// `config` must be NULL or a live `dr_config`; `userdata` must be usable from another thread.
#[no_mangle]
pub unsafe extern "C" fn dr_config_on_event(
    config: *mut dr_config,
    callback: dr_event_cb,
    userdata: *mut c_void,
    finalizer: dr_finalizer,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract, a live config used from one thread.
        let cfg = unsafe { config.as_mut() }.ok_or_else(|| Failure::invalid("config is NULL"))?;
        cfg.subscribers.push(std::sync::Arc::new(Subscription::new(
            callback, userdata, finalizer,
        )?));
        Ok(())
    })
}
