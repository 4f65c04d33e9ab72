//! A media pipeline's thread: codec work runs here, never on the async runtime, so a 20 ms
//! keyframe encode or an app's slow video sink stalls neither signaling nor webrtc-rs.
//!
//! A pipeline owns its state (codec, rate control, keyframe flags) and hears everything as
//! messages on one bounded channel; it ends when every sender is gone. Time is one of its
//! inputs: a pipeline that must act by a deadline (give up a frame, repeat a request) says
//! when, and is woken then if nothing comes first, so that an idle one sleeps instead of
//! being ticked.

use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::Instant;

/// Messages a pipeline may hold before the newest are dropped: a pipeline that falls this
/// far behind is stuck (a hung platform codec or sink), and memory must not grow for it.
pub(crate) const INPUT_CAPACITY: usize = 256;

/// Where a pipeline's input goes. Cloned into every task that feeds it; the pipeline's
/// thread ends once the last clone is dropped.
pub(crate) type PipelineInput<I> = mpsc::SyncSender<I>;

/// Starts `body` on a thread named `name`, fed by the returned sender. `body` gets each
/// turn's messages in a batch (everything that queued while it worked), so it can skip
/// stale frames rather than fall further behind.
pub(crate) fn spawn<I, F>(name: &str, mut body: F) -> std::io::Result<PipelineInput<I>>
where
    I: Send + 'static,
    F: FnMut(Vec<I>) + Send + 'static,
{
    spawn_made(
        name,
        || Some(()),
        move |(), batch: Vec<I>| {
            if !batch.is_empty() {
                body(batch);
            }
            None
        },
    )
}

/// As `spawn`, with the pipeline's state made first, on the pipeline's own thread: a codec
/// that is slow to make (OpenH264's decoder takes milliseconds) holds up neither the caller
/// nor anything else. If `make` gives nothing (it reports why itself), the pipeline ends and
/// its input reads as closed.
///
/// `body` returns when it must next run even if no message comes (None: only when one
/// does); such a turn gets an empty batch. Its first turn comes as soon as the state is
/// made, with an empty batch, so that it can set its first deadline.
pub(crate) fn spawn_made<I, S, M, F>(
    name: &str,
    make: M,
    mut body: F,
) -> std::io::Result<PipelineInput<I>>
where
    I: Send + 'static,
    M: FnOnce() -> Option<S> + Send + 'static,
    F: FnMut(&mut S, Vec<I>) -> Option<Instant> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<I>(INPUT_CAPACITY);
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        // A panicking codec or sink ends this pipeline, not the process.
        let mut state = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)) {
            Ok(Some(state)) => state,
            Ok(None) => return,
            Err(_) => {
                tracing::error!("a media pipeline panicked while starting");
                return;
            }
        };
        let mut batch = Vec::new();
        loop {
            let run = std::panic::AssertUnwindSafe(|| body(&mut state, batch));
            let Ok(wake_at) = std::panic::catch_unwind(run) else {
                tracing::error!("a media pipeline panicked and stopped");
                return;
            };
            let first = match wake_at {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            batch = match first {
                Ok(first) => std::iter::once(first).chain(rx.try_iter()).collect(),
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => return,
            };
        }
    })?;
    Ok(tx)
}

/// Hands `msg` to a pipeline without waiting: from async code, a full pipeline drops it
/// (it is stuck; see `INPUT_CAPACITY`). Returns false once the pipeline is gone.
pub(crate) fn offer<I>(input: &PipelineInput<I>, msg: I) -> bool {
    match input.try_send(msg) {
        Ok(()) | Err(TrySendError::Full(_)) => true,
        Err(TrySendError::Disconnected(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_pipeline_gets_what_queued_while_it_worked_in_one_batch() {
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let input = spawn("test-pipeline", move |batch: Vec<u32>| {
            std::thread::sleep(Duration::from_millis(30));
            let _ = seen_tx.send(batch);
        })
        .unwrap();
        for i in 0..5 {
            assert!(offer(&input, i));
        }
        drop(input);
        let batches: Vec<Vec<u32>> = seen.iter().collect();
        assert_eq!(batches.concat(), [0, 1, 2, 3, 4], "nothing lost, in order");
        assert!(batches.len() < 5, "later messages came together: {batches:?}");
    }

    #[test]
    fn a_panicking_pipeline_stops_without_taking_the_caller_down() {
        let input = spawn("test-pipeline", |_: Vec<u32>| panic!("codec bug")).unwrap();
        assert!(offer(&input, 1));
        let closed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            !offer(&input, 2)
        });
        assert!(closed, "the pipeline ended");
    }

    #[test]
    fn what_comes_while_the_state_is_made_waits_for_it() {
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let make = || {
            std::thread::sleep(Duration::from_millis(30));
            Some(10)
        };
        let input = spawn_made("test-pipeline", make, move |base: &mut u32, batch: Vec<u32>| {
            let _ = seen_tx.send(batch.iter().map(|i| *base + i).collect::<Vec<_>>());
            None
        })
        .unwrap();
        for i in 0..3 {
            assert!(offer(&input, i));
        }
        drop(input);
        assert_eq!(seen.iter().collect::<Vec<_>>().concat(), [10, 11, 12]);
    }

    #[test]
    fn a_pipeline_whose_state_cannot_be_made_reads_as_closed() {
        let input = spawn_made("test-pipeline", || None::<()>, |_, _: Vec<u32>| None).unwrap();
        let closed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            !offer(&input, 1)
        });
        assert!(closed, "the pipeline ended");
    }

    #[test]
    fn a_pipeline_is_woken_by_its_deadline_and_sleeps_without_one() {
        let (turns_tx, turns) = std::sync::mpsc::channel();
        let started = Instant::now();
        // Its first turn asks to be woken 30 ms after the start; after that only input wakes it.
        let mut deadline = Some(started + Duration::from_millis(30));
        let input = spawn_made(
            "test-pipeline",
            || Some(()),
            move |(), batch: Vec<u32>| {
                let _ = turns_tx.send((started.elapsed(), batch));
                deadline.take()
            },
        )
        .unwrap();
        let (_, batch) = turns.recv().unwrap();
        assert!(batch.is_empty(), "a first turn with no input");
        let (at, batch) = turns.recv().unwrap();
        assert!(batch.is_empty() && at >= Duration::from_millis(30), "woken at its deadline");
        let nothing = turns.recv_timeout(Duration::from_millis(100));
        assert!(nothing.is_err(), "no turn without a deadline or input: {nothing:?}");
        assert!(offer(&input, 7));
        assert_eq!(turns.recv().unwrap().1, [7]);
    }
}
