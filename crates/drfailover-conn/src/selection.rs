//! Writer selection: pure decisions over what the probes last saw.

/// What the monitor knows of one endpoint when choosing the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Health allows routing to it (up or merely suspect).
    pub usable: bool,
    /// Its latest probe saw it writable (`read_only=0`, `innodb_read_only=0`).
    pub writable: bool,
}

impl Candidate {
    fn eligible(self) -> bool {
        self.usable && self.writable
    }
}

/// The outcome of [`select_writer`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The writer to use (index into the endpoints), if any.
    pub writer: Option<usize>,
    /// Other endpoints that are writable at the same time (split brain), if any.
    pub split_brain: Vec<usize>,
}

/// Choose the writer.
///
/// - The current writer is kept while it is usable and writable — even when another node is
///   writable too (split brain: reported, never flip-flopped), unless `failback` is set and a
///   higher-priority node is eligible.
/// - Otherwise the highest-priority (lowest index) eligible node is adopted.
/// - Otherwise there is no writer.
pub fn select_writer(
    current: Option<usize>,
    candidates: &[Candidate],
    failback: bool,
) -> Selection {
    let eligible: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].eligible())
        .collect();
    let keep = current.filter(|&w| candidates.get(w).is_some_and(|c| c.eligible()));
    let writer = match (keep, eligible.first()) {
        (Some(w), Some(&best)) if failback && best < w => Some(best),
        (Some(w), _) => Some(w),
        (None, first) => first.copied(),
    };
    let split_brain = match writer {
        Some(w) => eligible.into_iter().filter(|&i| i != w).collect(),
        None => Vec::new(),
    };
    Selection {
        writer,
        split_brain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Candidate = Candidate {
        usable: true,
        writable: true,
    };
    const RO: Candidate = Candidate {
        usable: true,
        writable: false,
    };
    const DOWN: Candidate = Candidate {
        usable: false,
        writable: false,
    };

    #[test]
    fn adopts_highest_priority_writable() {
        assert_eq!(select_writer(None, &[RO, W, W], false).writer, Some(1));
        assert_eq!(select_writer(None, &[DOWN, RO], false).writer, None);
    }

    #[test]
    fn never_adopts_read_only_or_down() {
        assert_eq!(select_writer(Some(0), &[RO, RO], false).writer, None);
        assert_eq!(select_writer(Some(0), &[DOWN, RO], false).writer, None);
    }

    #[test]
    fn split_brain_keeps_current_and_reports() {
        let s = select_writer(Some(1), &[W, W], false);
        assert_eq!(
            s,
            Selection {
                writer: Some(1),
                split_brain: vec![0]
            }
        );
    }

    #[test]
    fn failback_only_when_configured() {
        assert_eq!(select_writer(Some(1), &[W, W], true).writer, Some(0));
        assert_eq!(select_writer(Some(1), &[RO, W], true).writer, Some(1));
    }

    #[test]
    fn fails_over_when_writer_goes_down() {
        assert_eq!(select_writer(Some(0), &[DOWN, W], false).writer, Some(1));
    }
}
