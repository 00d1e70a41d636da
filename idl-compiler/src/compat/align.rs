//! Pairing the members (fields or variants) of two versions of a struct or enum by position,
//! their wire identity, with names telling renames, moves, removals and insertions apart.

/// How a member (field or variant) of the old version relates to the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The same position in both, under the same name or renamed.
    Same(usize),
    /// The old member at the first position is at the second in the new version.
    Moved(usize, usize),
    /// The old member at this position is gone, and another one moved there.
    Replaced(usize),
    /// The new member at this position is new, and the old one there moved elsewhere.
    Took(usize),
    /// The old member at this trailing position is gone.
    Removed(usize),
    /// The new member at this trailing position is new.
    Added(usize),
    /// The old member at this position is gone, and those after it moved up.
    RemovedMiddle(usize),
    /// The new member at this position is new, and those after it moved down.
    InsertedMiddle(usize),
}

/// Pairs members by position, using names to tell moves, removals and insertions apart.
pub(super) fn align(old: &[&str], new: &[&str]) -> Vec<Step> {
    let common = old.len().min(new.len());
    if let Some(first) = (0..common).find(|&i| old[i] != new[i]) {
        // Members removed from (or inserted into) the middle: the rest is the same sequence.
        let (short, long) = if new.len() < old.len() { (new, old) } else { (old, new) };
        if short.len() < long.len()
            && let Some(kept) = subsequence(short, long)
        {
            let last = kept.last().copied().unwrap_or(0);
            let removed = new.len() < old.len();
            let mut steps: Vec<Step> = (0..first).map(Step::Same).collect();
            for i in (0..long.len()).filter(|i| !kept.contains(i)) {
                steps.push(match (removed, i < last) {
                    (true, true) => Step::RemovedMiddle(i),
                    (true, false) => Step::Removed(i),
                    (false, true) => Step::InsertedMiddle(i),
                    (false, false) => Step::Added(i),
                });
            }
            return steps;
        }
    }
    let mut steps = Vec::new();
    for i in 0..common {
        let moved_to = new.iter().position(|n| *n == old[i]);
        let came_from_old = old.contains(&new[i]);
        if old[i] != new[i] && moved_to.is_some() && !came_from_old {
            steps.push(Step::Took(i));
        }
        steps.push(match moved_to {
            _ if old[i] == new[i] => Step::Same(i),
            Some(j) => Step::Moved(i, j),
            None if came_from_old => Step::Replaced(i),
            None => Step::Same(i),
        });
    }
    for (i, name) in old.iter().enumerate().skip(common) {
        steps.push(new.iter().position(|n| n == name).map_or(Step::Removed(i), |j| Step::Moved(i, j)));
    }
    steps.extend((common..new.len()).filter(|&j| !old.contains(&new[j])).map(Step::Added));
    steps
}

/// Where `short` sits in `long` as a subsequence (greedily), if it does.
fn subsequence(short: &[&str], long: &[&str]) -> Option<Vec<usize>> {
    let mut kept = Vec::new();
    let mut at = 0;
    for name in short {
        at += long[at..].iter().position(|l| l == name)?;
        kept.push(at);
        at += 1;
    }
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::{Step, align};

    #[test]
    fn members_pair_by_position_and_names_tell_what_happened() {
        use Step::*;
        assert_eq!(align(&["a", "b"], &["a", "b", "c"]), [Same(0), Same(1), Added(2)]);
        assert_eq!(align(&["a", "b", "c"], &["a"]), [Same(0), Removed(1), Removed(2)]);
        assert_eq!(align(&["a", "b"], &["a", "x"]), [Same(0), Same(1)]);
        assert_eq!(align(&["a", "b"], &["x", "a"]), [Took(0), Moved(0, 1), Replaced(1)]);
        assert_eq!(align(&["a", "b"], &["b", "a"]), [Moved(0, 1), Moved(1, 0)]);
        assert_eq!(align(&["a", "b", "c"], &["a", "c"]), [Same(0), RemovedMiddle(1)]);
        assert_eq!(align(&["a", "b", "c", "d"], &["a", "c"]), [Same(0), RemovedMiddle(1), Removed(3)]);
        assert_eq!(align(&["a", "c"], &["a", "b", "c"]), [Same(0), InsertedMiddle(1)]);
        assert_eq!(align(&["a", "b"], &["b", "c"]), [Replaced(0), Took(1), Moved(1, 0)]);
    }
}
