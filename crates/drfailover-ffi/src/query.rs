//! Statements and results.

use std::os::raw::c_char;
use std::ptr;

use drfailover_conn::{QueryOptions, QueryResult};

use crate::client::dr_client;
use crate::guard::{self, c_str, MAX_SQL};
use crate::status::dr_status;

/// Flag for `dr_query`: the statement may safely run twice. After a connection loss once it
/// was sent, it is retried once instead of failing with `DR_E_OUTCOME_UNKNOWN`.
pub const DR_IDEMPOTENT: u32 = 1;

/// A fully fetched result. Owned by the caller; free with `dr_result_free`. Independent of
/// the client (it may outlive it). Not thread-safe: one thread at a time (it has a cursor).
pub struct dr_result {
    result: QueryResult,
    /// Index of the current row; `None` before the first `dr_result_next_row`.
    cursor: Option<usize>,
}

/// Run one statement on the writer. Blocks while it runs and, during a failover, up to
/// `failover_timeout_ms` for a writer; a statement that certainly did not run is retried on
/// the new writer. Returns `DR_E_OUTCOME_UNKNOWN` if the connection died after the statement
/// was sent (it is never replayed, unless `flags` has `DR_IDEMPOTENT`), `DR_E_SQL` for server
/// errors (see `dr_last_error()->mysql_errno`), `DR_E_NO_WRITER` when no writer appeared in
/// time. For autocommit statements; use `dr_lease` for explicit transactions.
/// On success, if `out` is not NULL, `*out` is a result the caller frees with
/// `dr_result_free`. Thread-safe: call from many threads at once; no lock is held while the
/// statement runs.
///
/// # Safety
/// `client` must be NULL or live; `sql` NULL or NUL-terminated; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_query(
    client: *const dr_client,
    sql: *const c_char,
    flags: u32,
    out: *mut *mut dr_result,
) -> dr_status {
    guard::status(|| {
        let client = crate::client::lookup(client)?;
        // SAFETY: per the contract.
        let sql = unsafe { c_str(sql, "sql", MAX_SQL) }?;
        if flags & !DR_IDEMPOTENT != 0 {
            return Err(guard::Failure::invalid(format!(
                "unknown flags 0x{:x}",
                flags & !DR_IDEMPOTENT
            )));
        }
        let options = QueryOptions {
            idempotent: flags & DR_IDEMPOTENT != 0,
        };
        let result = client.client.query_with(sql, options)?;
        if !out.is_null() {
            let boxed = Box::new(dr_result {
                result,
                cursor: None,
            });
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *out = Box::into_raw(boxed) };
        }
        Ok(())
    })
}

/// # Safety
/// `result` must be NULL or a live result.
unsafe fn result_ref<'a>(result: *const dr_result) -> Option<&'a dr_result> {
    // SAFETY: per the caller's contract.
    unsafe { result.as_ref() }
}

/// Number of rows (0 for statements without a result set, or NULL).
///
/// # Safety
/// `result` must be NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn dr_result_num_rows(result: *const dr_result) -> u64 {
    guard::value(0, || {
        // SAFETY: per the contract.
        let r = unsafe { result_ref(result) };
        r.map_or(0, |r| r.result.num_rows() as u64)
    })
}

/// Number of columns (0 for statements without a result set, or NULL).
///
/// # Safety
/// `result` must be NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn dr_result_num_fields(result: *const dr_result) -> u32 {
    guard::value(0, || {
        // SAFETY: per the contract.
        let r = unsafe { result_ref(result) };
        r.map_or(0, |r| r.result.num_fields() as u32)
    })
}

/// Name of column `index`, valid until `dr_result_free`; NULL if out of range or NULL.
///
/// # Safety
/// `result` must be NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn dr_result_field_name(
    result: *const dr_result,
    index: u32,
) -> *const c_char {
    guard::value(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { result_ref(result) }
            .and_then(|r| r.result.field_name_with_nul(index as usize))
            .map_or(ptr::null(), |n| n.as_ptr().cast())
    })
}

/// Advance to the next row (the first on the first call). Returns 1 if there is a current
/// row, 0 when the rows are exhausted (or `result` is NULL).
///
/// # Safety
/// `result` must be NULL or a live result not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn dr_result_next_row(result: *mut dr_result) -> i32 {
    guard::value(0, || {
        // SAFETY: per the contract.
        let Some(r) = (unsafe { result.as_mut() }) else {
            return 0;
        };
        let next = r.cursor.map_or(0, |c| c + 1);
        if next < r.result.num_rows() {
            r.cursor = Some(next);
            1
        } else {
            r.cursor = Some(r.result.num_rows());
            0
        }
    })
}

fn cell(r: &dr_result, row: usize, col: u32, length: *mut usize) -> *const c_char {
    match r.result.value_with_nul(row, col as usize) {
        Some(bytes) => {
            if !length.is_null() {
                // SAFETY: non-NULL and writable per the callers' contracts.
                unsafe { *length = bytes.len() - 1 };
            }
            bytes.as_ptr().cast()
        }
        None => ptr::null(),
    }
}

/// Column `col` of the current row: a NUL-terminated buffer valid until `dr_result_free`
/// (binary values may contain NULs: use `*length`). Returns NULL for SQL NULL, no current
/// row, or `col` out of range; `*length` (if not NULL) is written only for non-NULL values.
///
/// # Safety
/// `result` must be NULL or a live result; `length` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_result_value(
    result: *const dr_result,
    col: u32,
    length: *mut usize,
) -> *const c_char {
    guard::value(ptr::null(), || {
        // SAFETY: per the contract.
        match unsafe { result_ref(result) } {
            Some(r) => match r.cursor {
                Some(row) => cell(r, row, col, length),
                None => ptr::null(),
            },
            None => ptr::null(),
        }
    })
}

/// Cell (`row`, `col`) by position, independent of the cursor; as `dr_result_value`.
///
/// # Safety
/// `result` must be NULL or a live result; `length` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_result_value_at(
    result: *const dr_result,
    row: u64,
    col: u32,
    length: *mut usize,
) -> *const c_char {
    guard::value(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { result_ref(result) }.map_or(ptr::null(), |r| cell(r, row as usize, col, length))
    })
}

/// Rows changed by an INSERT/UPDATE/DELETE (rows returned by a SELECT); 0 for NULL.
///
/// # Safety
/// `result` must be NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn dr_result_affected_rows(result: *const dr_result) -> u64 {
    guard::value(0, || {
        // SAFETY: per the contract.
        let r = unsafe { result_ref(result) };
        r.map_or(0, |r| r.result.affected_rows())
    })
}

/// The AUTO_INCREMENT id generated by the statement, or 0.
///
/// # Safety
/// `result` must be NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn dr_result_insert_id(result: *const dr_result) -> u64 {
    guard::value(0, || {
        // SAFETY: per the contract.
        let r = unsafe { result_ref(result) };
        r.map_or(0, |r| r.result.insert_id())
    })
}

/// Free a result. NULL is ignored. Must not be called twice.
///
/// # Safety
/// `result` must be NULL or a result from `dr_query` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dr_result_free(result: *mut dr_result) {
    guard::value((), || {
        if !result.is_null() {
            // SAFETY: created by Box::into_raw in dr_query, not yet freed.
            drop(unsafe { Box::from_raw(result) });
        }
    })
}

symbol_version!(
    dr_query,
    dr_result_num_rows,
    dr_result_num_fields,
    dr_result_field_name,
    dr_result_next_row,
    dr_result_value,
    dr_result_value_at,
    dr_result_affected_rows,
    dr_result_insert_id,
    dr_result_free
);
