//! The soak's own record of the chain, against which every read is checked.
//!
//! Truncates bump an *epoch*. A read notes the epoch when it begins; if it
//! returns a block whose removal completed at or before that epoch, it is
//! stale. A block that was committed and not removed both when the read
//! began and when it ended must be found; missing it is a wrong answer.

use alloy::primitives::{B256, BlockNumber};
use cold_testkit::chain::{CONTRACTS, contract};
use signet_cold::BlockData;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

/// What the record knows about one generated block.
#[derive(Debug, Clone)]
pub struct BlockMeta {
    /// Block number.
    pub number: BlockNumber,
    /// Branch it was generated on.
    pub branch: u64,
    /// Transaction hashes, in order.
    pub txs: Vec<B256>,
    /// Logs per contract address (index `i` is [`contract`]`(i)`).
    pub logs_by_contract: [usize; CONTRACTS as usize],
    /// The backend committed it.
    pub committed: bool,
    /// A truncate that removes it has been issued (it may be gone already).
    pub doomed: bool,
    /// The epoch at which a truncate removing it completed.
    pub removed_epoch: Option<u64>,
}

#[derive(Default)]
struct Inner {
    blocks: HashMap<B256, BlockMeta>,
    tx_block: HashMap<B256, B256>,
    /// The chain as the follower intends it: number → block hash.
    canonical: BTreeMap<BlockNumber, B256>,
    /// Every block ever generated, for picking hashes (removed ones too).
    all: Vec<B256>,
    max_number: BlockNumber,
}

/// How a checked answer turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Consistent with the record.
    Ok,
    /// Returned data whose removal completed before the read began.
    Stale(String),
    /// Returned data that never existed, or missed data that must exist.
    Wrong(String),
}

/// The record, shared by the follower, the readers and the lag probe.
#[derive(Default)]
pub struct ChainRecord {
    inner: RwLock<Inner>,
    epoch: AtomicU64,
    commits: AtomicU64,
}

impl std::fmt::Debug for ChainRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainRecord").field("epoch", &self.epoch()).finish_non_exhaustive()
    }
}

impl ChainRecord {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits reported so far (a progress counter for the watchdog).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The current epoch; note it before a read begins.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Registers a block the follower is about to hand to the store, as the
    /// new canonical block at its number.
    pub fn add(&self, block: &BlockData, branch: u64) {
        let hash = block.header.hash();
        let mut logs_by_contract = [0usize; CONTRACTS as usize];
        for log in block.receipts.iter().flat_map(|r| &r.inner.logs) {
            if let Some(i) = (0..CONTRACTS).find(|i| contract(*i) == log.address) {
                logs_by_contract[i as usize] += 1;
            }
        }
        let txs: Vec<B256> = block.transactions.iter().map(|t| *t.tx_hash()).collect();
        let mut inner = self.write();
        for tx in &txs {
            inner.tx_block.insert(*tx, hash);
        }
        inner.blocks.insert(
            hash,
            BlockMeta {
                number: block.block_number(),
                branch,
                txs,
                logs_by_contract,
                committed: false,
                doomed: false,
                removed_epoch: None,
            },
        );
        inner.canonical.insert(block.block_number(), hash);
        inner.all.push(hash);
        inner.max_number = inner.max_number.max(block.block_number());
    }

    /// The backend committed these blocks.
    pub fn committed(&self, hashes: impl IntoIterator<Item = B256>) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.write();
        for hash in hashes {
            if let Some(meta) = inner.blocks.get_mut(&hash) {
                meta.committed = true;
            }
        }
    }

    /// A truncate above `block` is about to be issued: from now on, reads
    /// may or may not find the canonical blocks above it.
    pub fn truncating(&self, block: BlockNumber) {
        let mut inner = self.write();
        let doomed: Vec<B256> = inner.canonical.range(block + 1..).map(|(_, h)| *h).collect();
        for hash in doomed {
            if let Some(meta) = inner.blocks.get_mut(&hash) {
                meta.doomed = true;
            }
        }
    }

    /// A truncate above `block` completed: canonical blocks above it are
    /// removed as of a new epoch.
    pub fn truncated(&self, block: BlockNumber) {
        let mut inner = self.write();
        let epoch = self.epoch.load(Ordering::Acquire) + 1;
        let removed: Vec<B256> = inner.canonical.split_off(&(block + 1)).into_values().collect();
        for hash in removed {
            if let Some(meta) = inner.blocks.get_mut(&hash) {
                meta.removed_epoch = Some(epoch);
            }
        }
        self.epoch.store(epoch, Ordering::Release);
    }

    /// Canonical tip number, if any.
    pub fn tip(&self) -> Option<BlockNumber> {
        self.read().canonical.last_key_value().map(|(n, _)| *n)
    }

    /// Highest number ever handed to the store.
    pub fn max_number(&self) -> BlockNumber {
        self.read().max_number
    }

    /// The canonical block at `number`.
    pub fn canonical(&self, number: BlockNumber) -> Option<(B256, BlockMeta)> {
        let inner = self.read();
        let hash = *inner.canonical.get(&number)?;
        Some((hash, inner.blocks[&hash].clone()))
    }

    /// The canonical chain, in order.
    pub fn canonical_chain(&self) -> Vec<(BlockNumber, B256)> {
        self.read().canonical.iter().map(|(n, h)| (*n, *h)).collect()
    }

    /// The `i`-th generated block (modulo the count), removed ones included.
    pub fn any_block(&self, i: u64) -> Option<(B256, BlockMeta)> {
        let inner = self.read();
        if inner.all.is_empty() {
            return None;
        }
        let hash = inner.all[(i % inner.all.len() as u64) as usize];
        Some((hash, inner.blocks[&hash].clone()))
    }

    /// The canonical block at `number` if it is committed and not removed:
    /// a read beginning now must find it (unless it is removed meanwhile).
    pub fn present(&self, number: BlockNumber) -> Option<B256> {
        let inner = self.read();
        let hash = *inner.canonical.get(&number)?;
        let meta = &inner.blocks[&hash];
        (meta.committed && !meta.doomed).then_some(hash)
    }

    /// Whether `hash` is still committed and not removed.
    pub fn still_present(&self, hash: B256) -> bool {
        self.read().blocks.get(&hash).is_some_and(|m| m.committed && !m.doomed)
    }

    /// Canonical blocks handed to the store but not committed yet.
    pub fn uncommitted(&self) -> usize {
        let inner = self.read();
        inner.canonical.values().filter(|h| !inner.blocks[*h].committed).count()
    }

    /// Checks that block `hash` may be returned to a read that began at
    /// `epoch`, at number `number` if given.
    pub fn check_block(&self, hash: B256, number: Option<BlockNumber>, epoch: u64) -> Verdict {
        let inner = self.read();
        let Some(meta) = inner.blocks.get(&hash) else {
            return Verdict::Wrong(format!("block {hash} was never generated"));
        };
        if let Some(n) = number
            && n != meta.number
        {
            return Verdict::Wrong(format!("asked for block {n}, got block {}", meta.number));
        }
        match meta.removed_epoch {
            Some(removed) if removed <= epoch => Verdict::Stale(format!(
                "block {} (branch {}) was removed at epoch {removed}, read began at {epoch}",
                meta.number, meta.branch
            )),
            _ => Verdict::Ok,
        }
    }

    /// The block holding transaction `tx`.
    pub fn block_of_tx(&self, tx: B256) -> Option<(B256, BlockMeta)> {
        let inner = self.read();
        let hash = *inner.tx_block.get(&tx)?;
        Some((hash, inner.blocks[&hash].clone()))
    }

    /// The generated block at `number` whose transactions are `txs`.
    pub fn block_with_txs(&self, number: BlockNumber, txs: &[B256]) -> Option<B256> {
        let inner = self.read();
        let first = txs.first()?;
        let hash = *inner.tx_block.get(first)?;
        let meta = &inner.blocks[&hash];
        (meta.number == number && meta.txs == txs).then_some(hash)
    }

    /// Logs of contract `contract_index` the record expects in blocks
    /// `hashes`.
    pub fn expected_logs(&self, hashes: &[B256], contract_index: usize) -> usize {
        let inner = self.read();
        hashes.iter().map(|h| inner.blocks[h].logs_by_contract[contract_index]).sum()
    }
}
