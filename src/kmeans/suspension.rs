//! When bounds that do not pay are suspended, and when they are set again.

#[cfg(doc)]
use super::params::Pruning;

/// When [`Pruning::Auto`] suspends bounds that do not pay, and when it sets
/// them afresh. A bounded step costs more than a plain one where most rows
/// go to the kernel and less where few do; the early steps of a fit move
/// the centroids most and often send every row there, later ones few. So
/// bounds are suspended, not dropped, after [`Self::PATIENCE`] steps in a
/// row that worked on more than a third of the rows (sent them to the
/// kernel or, where it is as cheap as tightening a bound, tightened them:
/// `bounds::rows_worked`)
/// ([`Self::PATIENCE_AGAIN`] once set again), and set again after
/// [`Self::FIRST_WAIT`] steps, the wait doubling at each suspension: a fit
/// where they never pay sets them a handful of times while its labels
/// still move. Near the end of a fit (a step that moves at most one label
/// in [`Self::SETTLED_ONE_IN`]) they are set again without waiting: there
/// the centroids barely move, and fresh bounds settle most rows for a few
/// steps even where the carried ones have stopped paying (measurements in
/// `docs/tuning.md`).
#[derive(Debug, Clone, Copy)]
pub struct Suspension {
    /// The step that set the bounds (afresh: it sends every row to the
    /// kernel, or has its rows guessed).
    set_at: usize,
    /// Steps in a row, since then, that worked on too many rows.
    failures: usize,
    /// The step that sets them again, while suspended.
    resume_at: Option<usize>,
    /// Steps to wait at the next suspension.
    wait: usize,
}

impl Default for Suspension {
    fn default() -> Self {
        Suspension {
            set_at: 0,
            failures: 0,
            resume_at: None,
            wait: Self::FIRST_WAIT,
        }
    }
}

impl Suspension {
    /// Steps in a row that work on too many rows before the bounds of
    /// the first step are suspended.
    pub const PATIENCE: usize = 2;
    /// The same for bounds set again: the large early moves are over.
    pub const PATIENCE_AGAIN: usize = 1;
    /// Steps without bounds after the first suspension.
    pub const FIRST_WAIT: usize = 4;
    /// A step that moves at most one label in this many rows comes near the
    /// end of a fit: its centroids barely move, and fresh bounds settle
    /// most rows from there.
    pub const SETTLED_ONE_IN: usize = 100;

    /// Whether step `iteration` sets suspended bounds afresh: at the end of
    /// the wait, or sooner once the last step moved at most one label in
    /// [`Self::SETTLED_ONE_IN`] of its `n` rows (`changed`).
    pub fn resumes(&mut self, iteration: usize, changed: usize, n: usize) -> bool {
        let Some(resume_at) = self.resume_at else {
            return false;
        };
        if iteration < resume_at && changed * Self::SETTLED_ONE_IN > n {
            return false;
        }
        self.resume_at = None;
        self.set_at = iteration;
        self.failures = 0;
        true
    }

    /// Whether the bounds are to be suspended after step `iteration`, which
    /// ran with them and worked on `worked` of its `n` rows.
    pub fn suspends(&mut self, iteration: usize, worked: usize, n: usize) -> bool {
        if iteration == self.set_at {
            return false;
        }
        self.failures = if worked * 3 > n { self.failures + 1 } else { 0 };
        let patience = if self.set_at == 0 {
            Self::PATIENCE
        } else {
            Self::PATIENCE_AGAIN
        };
        if self.failures < patience {
            return false;
        }
        self.resume_at = Some(iteration + 1 + self.wait);
        self.wait *= 2;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays `Suspension` over a fit of `steps` steps whose bounded steps
    /// send `active(step)` of 100 rows to the kernel, and where each step
    /// moves 10 labels: the steps that ran with bounds, and those that set
    /// them.
    fn replay(steps: usize, active: impl Fn(usize) -> usize) -> (Vec<usize>, Vec<usize>) {
        replay_moving(steps, active, |_| 10)
    }

    /// [`replay`] where step `step` moves `changed(step)` labels.
    fn replay_moving(
        steps: usize,
        active: impl Fn(usize) -> usize,
        changed: impl Fn(usize) -> usize,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut suspension = Suspension::default();
        let (mut bounded, mut set) = (vec![], vec![0]);
        let mut with_bounds = true;
        for step in 0..steps {
            let last_changed = step.checked_sub(1).map_or(100, &changed);
            if suspension.resumes(step, last_changed, 100) {
                assert!(!with_bounds);
                with_bounds = true;
                set.push(step);
            }
            if with_bounds {
                bounded.push(step);
                with_bounds = !suspension.suspends(step, active(step), 100);
            }
        }
        (bounded, set)
    }

    #[test]
    fn bounds_that_do_not_pay_are_suspended_and_tried_again_ever_later() {
        // Bounds that never pay: the step that sets them, `PATIENCE` steps
        // (`PATIENCE_AGAIN` once set again), then a wait that doubles.
        let (bounded, set) = replay(200, |_| 100);
        let (mut expected_set, mut expected_bounded) = (vec![0], vec![]);
        let mut wait = Suspension::FIRST_WAIT;
        let mut patience = Suspension::PATIENCE;
        while let Some(&last) = expected_set.last() {
            expected_bounded.extend(last..=last + patience);
            let next = last + patience + 1 + wait;
            if next >= 200 {
                break;
            }
            expected_set.push(next);
            (wait, patience) = (wait * 2, Suspension::PATIENCE_AGAIN);
        }
        assert_eq!(set, expected_set);
        assert!(set.len() <= 8, "{set:?}");
        assert_eq!(bounded, expected_bounded);
        // A third of the rows is not too many; one step in `PATIENCE` that
        // sends few rows keeps the bounds.
        assert_eq!(replay(50, |_| 33).0.len(), 50);
        let patience = Suspension::PATIENCE;
        let (bounded, set) = replay(50, |step| if step % patience == 0 { 10 } else { 90 });
        assert_eq!((bounded.len(), set), (50, vec![0]));
        // Suspended by the first steps' large moves, set again once, and
        // kept once they pay.
        let resumed = patience + 1 + Suspension::FIRST_WAIT;
        let (bounded, set) = replay(60, |step| if step <= resumed { 100 } else { 20 });
        assert_eq!(set, vec![0, resumed]);
        assert_eq!(bounded.len(), patience + 1 + (60 - resumed));
    }

    #[test]
    fn suspended_bounds_are_set_again_once_few_labels_move() {
        // Bounds that never pay, on a fit whose steps move one label in
        // `SETTLED_ONE_IN` (of 100 rows) from step 15, one more before:
        // set on the schedule until then, then at the step after (before
        // the wait ends), and again at the step after each suspension.
        let few = 100 / Suspension::SETTLED_ONE_IN;
        let settles_at = 15;
        let (_, on_schedule) = replay_moving(60, |_| 100, |_| few + 1);
        let (bounded, set) = replay_moving(
            60,
            |_| 100,
            |step| if step < settles_at { few + 1 } else { few },
        );
        let mut expected: Vec<usize> = on_schedule
            .into_iter()
            .filter(|&step| step <= settles_at)
            .collect();
        assert!(!expected.contains(&(settles_at + 1)));
        expected.extend((settles_at + 1..60).step_by(Suspension::PATIENCE_AGAIN + 1));
        assert_eq!(set, expected);
        assert!(bounded.ends_with(&[56, 57, 58, 59]), "{bounded:?}");
    }
}
