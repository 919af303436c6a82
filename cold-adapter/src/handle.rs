//! The full handle: reads, writes and dispatch.

use crate::{
    ColdStorageReadHandle, DispatchError, Shared,
    read_handle::{HandleRef, read_methods},
    writes::{WriteOp, WriteOutput},
};
use alloy::primitives::BlockNumber;
use signet_cold::{BlockData, ColdReceipt, ColdResult};
use std::sync::Arc;

/// A cheap, cloneable handle with every read and write of the signet-cold
/// 0.7 task handle.
///
/// Created by [`ColdStorageTask::new`](crate::ColdStorageTask::new) or
/// [`ColdStorageTask::spawn`](crate::ColdStorageTask::spawn). Dropping the
/// last handle (of either kind) shuts the task down.
#[derive(Clone)]
pub struct ColdStorageHandle {
    reader: ColdStorageReadHandle,
}

impl std::fmt::Debug for ColdStorageHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorageHandle").field("health", &self.health()).finish()
    }
}

macro_rules! write_errors {
    () => {
        "# Errors\n\n\
         - [`ColdStorageError::TaskTerminated`](signet_cold::ColdStorageError::TaskTerminated) \
         when the task has shut down before the write was queued, or abandoned it at the end \
         of the [shutdown grace period](crate#shutdown). A write already \
         queued when shutdown starts still runs, in order, and returns its own result.\n\
         - [`ColdStorageError::Backend`](signet_cold::ColdStorageError::Backend) wrapping \
         [`WritesHalted`](crate::WritesHalted) while appends are halted.\n\
         - The backend's error when the write failed for good (it then halts appends; see \
         [durable writes](crate#durable-writes)), \
         wrapping [`BackendPanicked`](crate::BackendPanicked) when it panicked."
    };
}

macro_rules! write_cancel_safety {
    () => {
        "# Cancel safety\n\n\
         Not cancel safe in the usual sense: once the write is queued, dropping the future does \
         not withdraw it. It still runs, in order, and only its result is lost. Dropping the \
         future while it waits for a queue slot queues nothing."
    };
}

impl ColdStorageHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { reader: ColdStorageReadHandle { inner: HandleRef::new(shared) } }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.reader.inner.shared
    }

    /// A read-only handle to the same task.
    pub fn reader(&self) -> ColdStorageReadHandle {
        self.reader.clone()
    }

    read_methods!();

    /// Appends one block and waits until it is committed.
    ///
    /// The write waits for a queue slot, then for its turn and a drain: no
    /// backend read is in flight while it commits. The adapter does not
    /// check block order: what an out-of-order number does is the
    /// backend's. A repeated number: if the backend refuses it (the SQL
    /// backends do) and the stored block has the same hash, the write
    /// counts as applied and returns `Ok`; a different block at that number
    /// fails and halts appends (see [durable writes](crate#durable-writes));
    /// `MemColdBackend` overwrites it. Cached entries from the block's
    /// number up are evicted either way.
    ///
    #[doc = write_errors!()]
    ///
    #[doc = write_cancel_safety!()]
    pub async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        self.shared().write(WriteOp::AppendBlock(Box::new(data))).await.map(drop)
    }

    /// Appends blocks, in order, as one write, and waits until committed.
    ///
    /// See [`append_block`](Self::append_block).
    ///
    #[doc = write_errors!()]
    ///
    #[doc = write_cancel_safety!()]
    pub async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        self.shared().write(WriteOp::AppendBlocks(data)).await.map(drop)
    }

    /// Removes every block above `block` and waits until that is committed.
    ///
    /// Cached entries above `block` are evicted under the same drain, so a
    /// read that starts after this returns never sees removed data.
    ///
    #[doc = write_errors!()]
    ///
    #[doc = write_cancel_safety!()]
    pub async fn truncate_above(&self, block: BlockNumber) -> ColdResult<()> {
        self.shared().write(WriteOp::TruncateAbove(block)).await.map(drop)
    }

    /// Removes every block above `block` and returns their receipts: entry 0
    /// for `block + 1`, and so on (empty for blocks without receipts).
    ///
    /// Evicts the cache like [`truncate_above`](Self::truncate_above).
    ///
    #[doc = write_errors!()]
    ///
    #[doc = write_cancel_safety!()]
    pub async fn drain_above(&self, block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>> {
        match self.shared().write(WriteOp::DrainAbove(block)).await? {
            WriteOutput::Drained(receipts) => Ok(receipts),
            WriteOutput::Done => Ok(Vec::new()),
        }
    }

    /// Queues an append of `data` without waiting; never blocks.
    ///
    /// The write runs later, in order with every other write; a failure is
    /// logged at error level and counted in metrics. `Ok` is an
    /// acknowledgement: the write runs, even when shutdown starts before it
    /// does (within the [grace period](crate#shutdown)).
    ///
    /// Every write follows the [durable-write rules](crate#durable-writes).
    ///
    /// # Errors
    ///
    /// - [`DispatchError::Backpressure`] when the write queue is full. The
    ///   data is returned to nobody: retry later, or rely on hot storage and
    ///   replay.
    /// - [`DispatchError::Halted`] while appends are halted (the write is
    ///   not queued).
    /// - [`DispatchError::TaskTerminated`] once the task has shut down.
    pub fn dispatch_append_blocks(&self, data: Vec<BlockData>) -> Result<(), DispatchError> {
        self.shared().dispatch(WriteOp::AppendBlocks(data))
    }

    /// Queues a truncate above `block` without waiting; never blocks.
    ///
    /// Until it runs, reads may still see blocks above `block`. While
    /// appends are halted, a truncate below the failed block is queued (it
    /// clears the halt when it succeeds); see
    /// [durable writes](crate#durable-writes).
    ///
    /// # Errors
    ///
    /// As [`dispatch_append_blocks`](Self::dispatch_append_blocks).
    pub fn dispatch_truncate_above(&self, block: BlockNumber) -> Result<(), DispatchError> {
        self.shared().dispatch(WriteOp::TruncateAbove(block))
    }
}
