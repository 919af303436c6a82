//! The read-only handle, and the read methods both handles share.

use crate::Shared;
use std::sync::Arc;
use tokio_util::sync::DropGuard;

/// The part of a handle every clone shares; dropping the last one shuts the
/// task down.
pub(crate) struct HandleRef {
    pub(crate) shared: Arc<Shared>,
    _last_handle: DropGuard,
}

impl HandleRef {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Self> {
        let last_handle = shared.shutdown.clone().drop_guard();
        Arc::new(Self { shared, _last_handle: last_handle })
    }
}

macro_rules! read_errors {
    () => {
        "# Errors\n\n\
         - [`ColdStorageError::TaskTerminated`](signet_cold::ColdStorageError::TaskTerminated) \
         once the task has shut down, also for a call that was waiting for its permit.\n\
         - [`ColdStorageError::DeadlineExceeded`](signet_cold::ColdStorageError::DeadlineExceeded) \
         (carrying the drain deadline) when a write's drain waited past the \
         [drain deadline](crate::ColdStorageConfig::with_drain_deadline) while this read was in \
         flight.\n\
         - [`ColdStorageError::Backend`](signet_cold::ColdStorageError::Backend) for backend \
         failures, and wrapping [`BackendPanicked`](crate::BackendPanicked) when the backend call \
         panicked (the panic does not reach the caller).\n\
         - Any other error the backend returns, such as its own read timeout, once the \
         [read retries](crate::ColdStorageConfig::with_read_retries) of a \
         [transient](crate::fault) one are spent.\n\
         - [`ColdStorageError::Backend`](signet_cold::ColdStorageError::Backend) wrapping \
         [`NoRuntime`](crate::NoRuntime) when called outside a tokio runtime."
    };
}

macro_rules! read_cancel_safety {
    () => {
        "# Cancel safety\n\n\
         Cancel safe. Dropping the future gives up its place in the permit queue, or drops the \
         backend call and releases its permit: at once when the read runs in the caller's task, \
         at the runtime's next turn when it runs in a task of its own (see \
         [how reads run](crate#how-it-works)). Nothing is changed; only the result is lost."
    };
}

/// The 23 reads of the signet-cold 0.7 handle, expanded into both handles.
macro_rules! read_methods {
    () => {
        /// Gets a header by number or hash.
        ///
        /// A number already in the header cache is answered without a permit.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_header(
            &self,
            spec: signet_cold::HeaderSpecifier,
        ) -> signet_cold::ColdResult<Option<signet_storage_types::SealedHeader>> {
            self.shared().get_header(spec).await
        }

        /// Gets a header by block number; `Ok(None)` if it is not stored.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_header_by_number(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Option<signet_storage_types::SealedHeader>> {
            self.shared().get_header(signet_cold::HeaderSpecifier::Number(block)).await
        }

        /// Gets a header by block hash; `Ok(None)` if it is not stored.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_header_by_hash(
            &self,
            hash: alloy::primitives::B256,
        ) -> signet_cold::ColdResult<Option<signet_storage_types::SealedHeader>> {
            self.shared().get_header_by_hash(hash).await
        }

        /// Gets several headers in one backend read, one entry per specifier,
        /// in order.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_headers(
            &self,
            specs: Vec<signet_cold::HeaderSpecifier>,
        ) -> signet_cold::ColdResult<Vec<Option<signet_storage_types::SealedHeader>>> {
            self.shared().get_headers(specs).await
        }

        /// Gets a transaction, with its block confirmation, by hash, block and
        /// index, or block hash and index.
        ///
        /// A (block, index) already in the transaction cache is answered
        /// without a permit.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_transaction(
            &self,
            spec: signet_cold::TransactionSpecifier,
        ) -> signet_cold::ColdResult<
            Option<signet_cold::Confirmed<signet_storage_types::RecoveredTx>>,
        > {
            self.shared().get_transaction(spec).await
        }

        /// Gets a transaction by its hash.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_tx_by_hash(
            &self,
            hash: alloy::primitives::B256,
        ) -> signet_cold::ColdResult<
            Option<signet_cold::Confirmed<signet_storage_types::RecoveredTx>>,
        > {
            self.shared().get_transaction(signet_cold::TransactionSpecifier::Hash(hash)).await
        }

        /// Gets the transaction at `index` (0-based) in block `block`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_tx_by_block_and_index(
            &self,
            block: alloy::primitives::BlockNumber,
            index: u64,
        ) -> signet_cold::ColdResult<
            Option<signet_cold::Confirmed<signet_storage_types::RecoveredTx>>,
        > {
            self.shared()
                .get_transaction(signet_cold::TransactionSpecifier::BlockAndIndex { block, index })
                .await
        }

        /// Gets the transaction at `index` (0-based) in the block with hash
        /// `block_hash`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_tx_by_block_hash_and_index(
            &self,
            block_hash: alloy::primitives::B256,
            index: u64,
        ) -> signet_cold::ColdResult<
            Option<signet_cold::Confirmed<signet_storage_types::RecoveredTx>>,
        > {
            self.shared()
                .get_transaction(signet_cold::TransactionSpecifier::BlockHashAndIndex {
                    block_hash,
                    index,
                })
                .await
        }

        /// Gets every transaction in a block, in order (empty if the block is
        /// not stored).
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_transactions_in_block(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::RecoveredTx>> {
            self.shared().get_transactions_in_block(block).await
        }

        /// Gets the number of transactions in a block (0 if it is not stored).
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_transaction_count(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<u64> {
            self.shared().get_transaction_count(block).await
        }

        /// Gets a receipt by transaction hash or by block and index.
        ///
        /// A (block, index) already in the receipt cache is answered without a
        /// permit.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_receipt(
            &self,
            spec: signet_cold::ReceiptSpecifier,
        ) -> signet_cold::ColdResult<Option<signet_cold::ColdReceipt>> {
            self.shared().get_receipt(spec).await
        }

        /// Gets the receipt of the transaction with hash `hash`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_receipt_by_tx_hash(
            &self,
            hash: alloy::primitives::B256,
        ) -> signet_cold::ColdResult<Option<signet_cold::ColdReceipt>> {
            self.shared().get_receipt(signet_cold::ReceiptSpecifier::TxHash(hash)).await
        }

        /// Gets the receipt at `index` (0-based) in block `block`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_receipt_by_block_and_index(
            &self,
            block: alloy::primitives::BlockNumber,
            index: u64,
        ) -> signet_cold::ColdResult<Option<signet_cold::ColdReceipt>> {
            self.shared()
                .get_receipt(signet_cold::ReceiptSpecifier::BlockAndIndex { block, index })
                .await
        }

        /// Gets every receipt in a block, in order (empty if the block is not
        /// stored).
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_receipts_in_block(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Vec<signet_cold::ColdReceipt>> {
            self.shared().get_receipts_in_block(block).await
        }

        /// Gets the signet events of a block or an inclusive block range.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_signet_events(
            &self,
            spec: signet_cold::SignetEventsSpecifier,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::DbSignetEvent>> {
            self.shared().get_signet_events(spec).await
        }

        /// Gets the signet events of one block.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_signet_events_in_block(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::DbSignetEvent>> {
            self.shared().get_signet_events(signet_cold::SignetEventsSpecifier::Block(block)).await
        }

        /// Gets the signet events of blocks `start..=end`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_signet_events_in_range(
            &self,
            start: alloy::primitives::BlockNumber,
            end: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::DbSignetEvent>> {
            self.shared()
                .get_signet_events(signet_cold::SignetEventsSpecifier::BlockRange { start, end })
                .await
        }

        /// Gets the zenith header of block `block`, if it has one.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_zenith_header(
            &self,
            block: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Option<signet_storage_types::DbZenithHeader>> {
            self.shared().get_zenith_header(signet_cold::ZenithHeaderSpecifier::Number(block)).await
        }

        /// Gets the zenith headers of a block or an inclusive block range.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_zenith_headers(
            &self,
            spec: signet_cold::ZenithHeaderSpecifier,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::DbZenithHeader>> {
            self.shared().get_zenith_headers(spec).await
        }

        /// Gets the zenith headers of blocks `start..=end`.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_zenith_headers_in_range(
            &self,
            start: alloy::primitives::BlockNumber,
            end: alloy::primitives::BlockNumber,
        ) -> signet_cold::ColdResult<Vec<signet_storage_types::DbZenithHeader>> {
            self.shared()
                .get_zenith_headers(signet_cold::ZenithHeaderSpecifier::Range { start, end })
                .await
        }

        /// Gets the logs matching `filter`, ordered by (block, transaction,
        /// log index), with `eth_getLogs` semantics.
        ///
        /// # Block range
        ///
        /// The handle resolves the filter's blocks itself, the same way over
        /// every backend (signet-cold 0.10's backends disagree, and some
        /// answer wrongly), as geth does for `eth_getLogs`, against the
        /// store as it is when the query runs (no write commits between):
        ///
        /// - a missing `fromBlock` or `toBlock` is `latest`; `latest`,
        ///   `safe`, `finalized` and `pending` are the highest stored block
        ///   (cold storage only holds blocks the node has made final);
        ///   `earliest` is block 0; a `toBlock` above that block is that
        ///   block;
        /// - a `blockHash` is exactly that block, and a hash no stored block
        ///   has fails with
        ///   [`ColdStorageError::NotFound`](signet_cold::ColdStorageError::NotFound)
        ///   (geth: "unknown block"), never all logs or silently none;
        /// - explicit numbers with `fromBlock` above `toBlock` fail with
        ///   [`InvalidBlockRange`](crate::InvalidBlockRange) (geth: "invalid
        ///   block range params"); a range empty only once tags resolve, or
        ///   that starts above the highest stored block, or an empty store,
        ///   returns no logs.
        ///
        /// More than `max_logs` matching logs fail with
        /// [`ColdStorageError::TooManyLogs`](signet_cold::ColdStorageError::TooManyLogs),
        /// over every backend, rather than return a partial list.
        ///
        /// A query takes read permits in proportion to the blocks it spans
        /// (at most a quarter of the read cap), so wide scans cannot fill
        /// the read cap alone; the formula is on
        /// [`ColdStorageConfig::log_query_permits`](crate::ColdStorageConfig::log_query_permits).
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        /// Also the errors under *Block range* and `TooManyLogs` above.
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_logs(
            &self,
            filter: signet_cold::Filter,
            max_logs: usize,
        ) -> signet_cold::ColdResult<Vec<signet_cold::RpcLog>> {
            self.shared().get_logs(filter, max_logs).await
        }

        /// Streams the logs matching `filter`, in order.
        ///
        /// Streams take no read permit and are not drained (backends read
        /// from a snapshot); at most the
        /// [stream cap](crate::ColdStorageConfig::with_stream_cap) produce at
        /// once, and a call above it waits for a slot. `deadline` is clamped
        /// to the [maximum](crate::ColdStorageConfig::with_max_stream_deadline)
        /// and counts from when production starts. The filter's block range
        /// is resolved first, as [`get_logs`](Self::get_logs) resolves it,
        /// bounded by the backend's `read_timeout` (500 ms when it has none).
        /// Dropping the stream stops production and frees the slot.
        ///
        /// # Errors
        ///
        /// - [`ColdStorageError::TaskTerminated`](signet_cold::ColdStorageError::TaskTerminated)
        ///   once the task has shut down.
        /// - [`ColdStorageError::DeadlineExceeded`](signet_cold::ColdStorageError::DeadlineExceeded)
        ///   when resolving the range took longer than the bound above.
        /// - The range errors of [`get_logs`](Self::get_logs) (an unknown
        ///   `blockHash`, `fromBlock` above `toBlock`).
        /// - Errors met while producing (too many logs, stream deadline,
        ///   reorg, backend failure) arrive as the stream's last item.
        ///
        /// # Cancel safety
        ///
        /// Cancel safe: dropping the future before it returns a stream gives
        /// up its wait for a slot; nothing has started producing.
        pub async fn stream_logs(
            &self,
            filter: signet_cold::Filter,
            max_logs: usize,
            deadline: std::time::Duration,
        ) -> signet_cold::ColdResult<signet_cold::LogStream> {
            self.shared().stream_logs(filter, max_logs, deadline).await
        }

        /// Gets the highest stored block number; `Ok(None)` when empty.
        ///
        #[doc = $crate::read_handle::read_errors!()]
        ///
        #[doc = $crate::read_handle::read_cancel_safety!()]
        pub async fn get_latest_block(
            &self,
        ) -> signet_cold::ColdResult<Option<alloy::primitives::BlockNumber>> {
            self.shared().get_latest_block().await
        }

        /// A snapshot of the task's progress and faults: reads in flight and
        /// queued, how long the pending drain has waited, write queue depth,
        /// streams, write retries, a halt, lost writes, and whether it is
        /// closed. Atomic loads and two short uncontended locks; never waits.
        pub fn health(&self) -> $crate::ColdStorageHealth {
            self.shared().health()
        }
    };
}
pub(crate) use {read_cancel_safety, read_errors, read_methods};

/// A cheap, cloneable handle for reads only.
///
/// Obtained from [`ColdStorageHandle::reader`](crate::ColdStorageHandle::reader).
/// It keeps the task alive like any handle: the task shuts down when the last
/// handle of either kind is dropped.
#[derive(Clone)]
pub struct ColdStorageReadHandle {
    pub(crate) inner: Arc<HandleRef>,
}

impl std::fmt::Debug for ColdStorageReadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorageReadHandle").field("health", &self.health()).finish()
    }
}

impl ColdStorageReadHandle {
    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    read_methods!();
}
