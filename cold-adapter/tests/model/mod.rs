//! The `cold_ops` model: a byte decoder, a reference model of the cold
//! chain, and a checker that drives a real [`ColdStorageTask`] over a fresh
//! [`MemColdBackend`] and compares every result with the model.
//!
//! Shared, unchanged, by the `cold_ops` fuzz target (through `#[path]`) and
//! by the stable replay in `tests/model_replay.rs`, so a crash file found by
//! the fuzzer replays in `cargo test`.
//!
//! # Input format
//!
//! Bytes 0 and 1 pick the configuration (see [`Setup::from_bytes`]). Every
//! later operation is one opcode byte, whose high nibble picks the operation,
//! followed by the argument bytes that operation takes (see [`Op::decode`];
//! [`Op::encode`] is its canonical inverse). Missing bytes read as 0, so every
//! byte string is a valid input. Inputs are cut to [`MAX_OPS`] operations.
//!
//! # What the model says
//!
//! The chain is a map from block number to the *tag* of the append that
//! wrote it (every block ever built has its own tag, hence its own hashes).
//! Writes reach the writer's queue in the order the driver issues them and
//! are applied in that order, so the backend's state is always "the
//! confirmed chain plus a prefix of the pending writes". A write whose future
//! the caller dropped unfinished may or may not be in the queue: it is
//! pending with a *maybe* flag, and the model keeps every possibility.
//!
//! The model is a set of candidates `(chain, p)`: `chain` is a state the
//! backend may be in, reached by applying the first `p` pending writes
//! (skipping some maybe writes). A read's result must match some extension
//! of a candidate (a longer prefix, because the writer runs on while the
//! driver is busy); only the matching extensions survive, so later reads
//! must agree with earlier ones. An awaited write that returns `Ok` (or a
//! dropped write future that completed) forces every write before it to
//! have run. A dispatch that returns `Ok` is a certain pending write. This
//! checks: writes applied in order, nothing acknowledged lost or applied
//! twice, a read that starts after a truncate returned never sees blocks
//! above it (caches included), and, after `run` returns, the backend's final
//! state is one the model allows: shutdown runs every write already queued,
//! in order (every acknowledged dispatch among them); only a write whose
//! future was dropped may be missing, as it may never have been queued.
//!
//! No hang: every call runs under [`HANG`]; a call that takes longer fails
//! the case. Writes and dispatches never fail before shutdown; after it,
//! everything fails with `TaskTerminated`.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use alloy::consensus::{
    EthereumTxEnvelope, Header, Receipt as AlloyReceipt, Sealable, Signed, TxLegacy, TxType,
    transaction::Recovered,
};
use alloy::primitives::{Address, B256, Signature, TxKind, U256};
use cold_adapter::{ColdStorageConfig, ColdStorageHandle, ColdStorageTask, DispatchError};
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageError, ColdStorageRead, Confirmed,
    HeaderSpecifier, mem::MemColdBackend,
};
use signet_storage_types::{Receipt, RecoveredTx, SealedHeader};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Inputs are cut to this many operations, to keep a case small.
pub const MAX_OPS: usize = 64;

/// Every call must resolve within this (real time); longer is a hang.
pub const HANG: Duration = Duration::from_secs(10);

/// Past this many maybe writes pending (or [`MAX_PENDING`] pending writes, or
/// [`MAX_CANDIDATES`] candidates), the driver settles: an awaited empty
/// append and a read of every header. This bounds the model's work per step.
pub const MAX_MAYBE: usize = 4;
/// See [`MAX_MAYBE`].
pub const MAX_PENDING: usize = 12;
/// See [`MAX_MAYBE`].
pub const MAX_CANDIDATES: usize = 64;

/// Most transactions in a generated block.
pub const MAX_TXS: u64 = 3;

// ----- decoding -------------------------------------------------------------

/// The configuration of one case, from the first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// Read permits (1 to 4).
    pub read_cap: usize,
    /// Write queue slots (1 to 4).
    pub write_queue: usize,
    /// Writes per drain (1 to 4).
    pub write_batch: usize,
    /// Entries per cache map (1 to 4).
    pub cache_entries: usize,
    /// Drive the task on the multi-thread runtime (else current-thread).
    pub multi_thread: bool,
    /// Keep the 5 s drain deadline (else none).
    pub drain_deadline: bool,
    /// End the case by dropping every handle (else by cancelling the token).
    pub end_by_drop: bool,
}

impl Setup {
    /// Decodes the two configuration bytes.
    pub fn from_bytes(a: u8, b: u8) -> Self {
        Self {
            read_cap: 1 + usize::from(a & 3),
            write_queue: 1 + usize::from((a >> 2) & 3),
            write_batch: 1 + usize::from((a >> 4) & 3),
            multi_thread: a & 0x40 != 0,
            cache_entries: 1 + usize::from(b & 3),
            drain_deadline: b & 4 != 0,
            end_by_drop: b & 8 != 0,
        }
    }

    /// The canonical two bytes of this setup.
    pub fn to_bytes(self) -> [u8; 2] {
        let a = (self.read_cap - 1) as u8
            | ((self.write_queue - 1) as u8) << 2
            | ((self.write_batch - 1) as u8) << 4
            | u8::from(self.multi_thread) << 6;
        let b = (self.cache_entries - 1) as u8
            | u8::from(self.drain_deadline) << 2
            | u8::from(self.end_by_drop) << 3;
        [a, b]
    }

    fn config(self) -> ColdStorageConfig {
        ColdStorageConfig::default()
            .with_read_cap(self.read_cap)
            .with_write_queue(self.write_queue)
            .with_write_batch(self.write_batch)
            .with_cache_entries(self.cache_entries)
            .with_drain_deadline(self.drain_deadline.then_some(Duration::from_secs(5)))
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self::from_bytes(0x3f, 0x07)
    }
}

/// A read, with raw arguments resolved against the model when it runs
/// (`a` picks a block number or a known hash, `b` an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Which read (see [`Read::KINDS`]).
    pub kind: u8,
    /// First raw argument.
    pub a: u8,
    /// Second raw argument.
    pub b: u8,
}

impl Read {
    /// Number of read kinds.
    pub const KINDS: u8 = 12;
}

/// A write, with its raw argument (a block count or a truncation point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `append_block` of the next block.
    AppendBlock,
    /// `append_blocks` of the next `n % 4` blocks (0 is an empty append).
    AppendBlocks(u8),
    /// `truncate_above(k)`, `k` resolved from the raw byte.
    Truncate(u8),
    /// `drain_above(k)`, `k` resolved from the raw byte.
    Drain(u8),
}

/// One operation of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Await a read on the full handle.
    Read(Read),
    /// Await a read on a read-only handle.
    ReadOnly(Read),
    /// Await a write.
    Write(Write),
    /// `dispatch_append_blocks` of the next `1 + n % 3` blocks.
    DispatchAppend(u8),
    /// `dispatch_truncate_above(k)`.
    DispatchTruncate(u8),
    /// Start a read, poll it `polls` times (1 to 4, yielding between polls),
    /// drop it.
    CancelRead(Read, u8),
    /// Start a write, poll it `polls` times (1 to 4, yielding between polls),
    /// drop it.
    CancelWrite(Write, u8),
    /// Yield to the runtime `1 + n` times (the writer runs on).
    Yield(u8),
    /// An awaited empty append, then a read of every header: settles every
    /// maybe.
    Settle,
    /// Cancel the token.
    Shutdown,
}

fn arg(bytes: &[u8], at: &mut usize) -> u8 {
    let b = bytes.get(*at).copied().unwrap_or(0);
    *at += 1;
    b
}

fn write_of(sel: u8, raw: u8) -> Write {
    match sel & 3 {
        0 => Write::AppendBlock,
        1 => Write::AppendBlocks(raw & 3),
        2 => Write::Truncate(raw),
        _ => Write::Drain(raw),
    }
}

fn write_sel(w: Write) -> (u8, u8) {
    match w {
        Write::AppendBlock => (0, 0),
        Write::AppendBlocks(n) => (1, n & 3),
        Write::Truncate(k) => (2, k),
        Write::Drain(k) => (3, k),
    }
}

impl Op {
    /// Decodes the operation at `bytes[*at]` and advances past its
    /// arguments.
    pub fn decode(bytes: &[u8], at: &mut usize) -> Self {
        let code = arg(bytes, at);
        let low = code & 0x0f;
        let read = |kind: u8, at: &mut usize| Read {
            kind: kind % Read::KINDS,
            a: arg(bytes, at),
            b: arg(bytes, at),
        };
        match code >> 4 {
            0..=2 => Self::Read(read(low, at)),
            3 => Self::ReadOnly(read(low, at)),
            4 => Self::Write(Write::AppendBlock),
            5 => Self::Write(Write::AppendBlocks(low & 3)),
            6 => Self::Write(Write::Truncate(arg(bytes, at))),
            7 => Self::Write(Write::Drain(arg(bytes, at))),
            8 => Self::DispatchAppend(low % 3),
            9 => Self::DispatchTruncate(arg(bytes, at)),
            10 => Self::CancelRead(read(low, at), 1 + (arg(bytes, at) & 3)),
            11 | 12 => {
                let raw = arg(bytes, at);
                Self::CancelWrite(write_of(low, raw), 1 + ((low >> 2) & 3))
            }
            13 => Self::Yield(low),
            14 => Self::Settle,
            _ if low == 0 => Self::Shutdown,
            _ => Self::Yield(low),
        }
    }

    /// The canonical bytes of this operation ([`Op::decode`] reads them
    /// back).
    pub fn encode(self, out: &mut Vec<u8>) {
        match self {
            Self::Read(r) => out.extend([r.kind % Read::KINDS, r.a, r.b]),
            Self::ReadOnly(r) => out.extend([0x30 | (r.kind % Read::KINDS), r.a, r.b]),
            Self::Write(Write::AppendBlock) => out.push(0x40),
            Self::Write(Write::AppendBlocks(n)) => out.push(0x50 | (n & 3)),
            Self::Write(Write::Truncate(k)) => out.extend([0x60, k]),
            Self::Write(Write::Drain(k)) => out.extend([0x70, k]),
            Self::DispatchAppend(n) => out.push(0x80 | (n % 3)),
            Self::DispatchTruncate(k) => out.extend([0x90, k]),
            Self::CancelRead(r, polls) => {
                out.extend([0xa0 | (r.kind % Read::KINDS), r.a, r.b, (polls.clamp(1, 4) - 1)]);
            }
            Self::CancelWrite(w, polls) => {
                let (sel, raw) = write_sel(w);
                out.extend([0xb0 | sel | ((polls.clamp(1, 4) - 1) << 2), raw]);
            }
            Self::Yield(n) => out.push(0xd0 | (n & 0x0f)),
            Self::Settle => out.push(0xe0),
            Self::Shutdown => out.push(0xf0),
        }
    }
}

/// Decodes a whole input: its setup and up to [`MAX_OPS`] operations.
pub fn decode(bytes: &[u8]) -> (Setup, Vec<Op>) {
    let setup =
        Setup::from_bytes(bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0));
    let mut ops = Vec::new();
    let mut at = 2;
    while at < bytes.len() && ops.len() < MAX_OPS {
        ops.push(Op::decode(bytes, &mut at));
    }
    (setup, ops)
}

/// The canonical bytes of a case.
pub fn encode(setup: Setup, ops: &[Op]) -> Vec<u8> {
    let mut out = setup.to_bytes().to_vec();
    for op in ops {
        op.encode(&mut out);
    }
    out
}

// ----- blocks ---------------------------------------------------------------

/// Identifies one built block (and so its header and transaction hashes).
pub type Tag = u32;

/// A backend state as the model sees it: (block number, tag), ascending.
/// (A sorted vector: appends always go above every possible tip, and it is
/// much cheaper to clone and compare than a map.)
pub type Chain = Vec<(u64, Tag)>;

/// The tag of block `n` in `chain`.
fn tag_at(chain: &Chain, n: u64) -> Option<Tag> {
    chain.binary_search_by_key(&n, |&(m, _)| m).ok().map(|i| chain[i].1)
}

/// The highest block of `chain`.
fn tip(chain: &Chain) -> Option<u64> {
    chain.last().map(|&(n, _)| n)
}

/// What the model remembers of a block it built.
#[derive(Debug, Clone)]
struct Built {
    number: u64,
    hash: B256,
    txs: Vec<B256>,
    data: BlockData,
}

/// Builds block `number` with tag `tag`: `tag % (MAX_TXS + 1)` legacy
/// transactions with nonces unique to the tag, and their receipts.
fn build_block(number: u64, tag: Tag) -> BlockData {
    let header =
        Header { number, timestamp: u64::from(tag), gas_limit: 30_000_000, ..Default::default() };
    let count = u64::from(tag) % (MAX_TXS + 1);
    let mut transactions: Vec<RecoveredTx> = Vec::new();
    let mut receipts = Vec::new();
    for i in 0..count {
        let nonce = u64::from(tag) * 8 + i;
        let tx = TxLegacy {
            chain_id: Some(519),
            nonce,
            gas_limit: 21_000,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let sig = Signature::new(U256::from(nonce + 1), U256::from(nonce + 2), false);
        let envelope = EthereumTxEnvelope::Legacy(Signed::new_unhashed(tx, sig));
        transactions.push(Recovered::new_unchecked(envelope, Address::with_last_byte(1 + i as u8)));
        receipts.push(Receipt {
            tx_type: TxType::Legacy,
            inner: AlloyReceipt {
                status: true.into(),
                cumulative_gas_used: 21_000 * (i + 1),
                logs: vec![],
            },
        });
    }
    BlockData::new(header.seal_slow(), transactions, receipts, vec![], None)
}

// ----- observations ---------------------------------------------------------

/// A transaction or receipt as compared: (tx hash, block, block hash, index).
pub type TxKey = (B256, u64, B256, u64);

/// A read's result, reduced to what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obs {
    /// A header: (number, hash).
    Header(Option<(u64, B256)>),
    /// Several headers.
    Headers(Vec<Option<(u64, B256)>>),
    /// The latest block.
    Latest(Option<u64>),
    /// A transaction count.
    Count(u64),
    /// A transaction or receipt.
    Tx(Option<TxKey>),
    /// The transactions or receipts of a block.
    Txs(Vec<TxKey>),
    /// Transaction hashes.
    Hashes(Vec<B256>),
}

fn header_key(h: &SealedHeader) -> (u64, B256) {
    (h.number, h.hash())
}

fn tx_key(tx: &Confirmed<RecoveredTx>) -> TxKey {
    let meta = tx.meta();
    (*tx.inner().tx_hash(), meta.block_number(), meta.block_hash(), meta.transaction_index())
}

fn receipt_key(r: &ColdReceipt) -> TxKey {
    (r.tx_hash, r.block_number, r.block_hash, r.transaction_index)
}

/// A read with its arguments resolved.
#[derive(Debug, Clone)]
enum Query {
    HeaderByNumber(u64),
    HeaderByHash(B256),
    Latest,
    TxCount(u64),
    TxByBlockIndex(u64, u64),
    TxByHash(B256),
    ReceiptByBlockIndex(u64, u64),
    ReceiptByTxHash(B256),
    ReceiptsInBlock(u64),
    TxsInBlock(u64),
    Headers(Vec<HeaderSpecifier>),
    TxByBlockHashIndex(B256, u64),
}

/// The reads any handle offers, so both handle kinds run the same code.
trait Reads {
    fn query(&self, q: Query) -> impl Future<Output = ColdResult<Obs>>;
}

macro_rules! impl_reads {
    ($t:ty) => {
        impl Reads for $t {
            async fn query(&self, q: Query) -> ColdResult<Obs> {
                Ok(match q {
                    Query::HeaderByNumber(n) => {
                        Obs::Header(self.get_header_by_number(n).await?.as_ref().map(header_key))
                    }
                    Query::HeaderByHash(h) => {
                        Obs::Header(self.get_header_by_hash(h).await?.as_ref().map(header_key))
                    }
                    Query::Latest => Obs::Latest(self.get_latest_block().await?),
                    Query::TxCount(n) => Obs::Count(self.get_transaction_count(n).await?),
                    Query::TxByBlockIndex(n, i) => {
                        Obs::Tx(self.get_tx_by_block_and_index(n, i).await?.as_ref().map(tx_key))
                    }
                    Query::TxByHash(h) => {
                        Obs::Tx(self.get_tx_by_hash(h).await?.as_ref().map(tx_key))
                    }
                    Query::ReceiptByBlockIndex(n, i) => Obs::Tx(
                        self.get_receipt_by_block_and_index(n, i).await?.as_ref().map(receipt_key),
                    ),
                    Query::ReceiptByTxHash(h) => {
                        Obs::Tx(self.get_receipt_by_tx_hash(h).await?.as_ref().map(receipt_key))
                    }
                    Query::ReceiptsInBlock(n) => Obs::Txs(
                        self.get_receipts_in_block(n).await?.iter().map(receipt_key).collect(),
                    ),
                    Query::TxsInBlock(n) => Obs::Hashes(
                        self.get_transactions_in_block(n)
                            .await?
                            .iter()
                            .map(|t| *t.tx_hash())
                            .collect(),
                    ),
                    Query::Headers(specs) => Obs::Headers(
                        self.get_headers(specs)
                            .await?
                            .iter()
                            .map(|h| h.as_ref().map(header_key))
                            .collect(),
                    ),
                    Query::TxByBlockHashIndex(h, i) => Obs::Tx(
                        self.get_tx_by_block_hash_and_index(h, i).await?.as_ref().map(tx_key),
                    ),
                })
            }
        }
    };
}
impl_reads!(cold_adapter::ColdStorageHandle);
impl_reads!(cold_adapter::ColdStorageReadHandle);

/// What `q` returns on `chain`, given every block built so far.
fn expect(built: &[Built], chain: &Chain, q: &Query) -> Obs {
    let live =
        |b: &Built| tag_at(chain, b.number).is_some_and(|t| built[t as usize].hash == b.hash);
    let at = |n: u64| tag_at(chain, n).map(|t| &built[t as usize]);
    let by_hash = |h: &B256| built.iter().find(|b| b.hash == *h).filter(|b| live(b));
    let by_tx = |h: &B256| {
        built.iter().filter(|b| live(b)).find_map(|b| {
            let i = b.txs.iter().position(|t| t == h)?;
            Some((*h, b.number, b.hash, i as u64))
        })
    };
    let tx = |b: Option<&Built>, i: u64| {
        b.and_then(|b| b.txs.get(i as usize).map(|h| (*h, b.number, b.hash, i)))
    };
    let all = |b: Option<&Built>| -> Vec<TxKey> {
        b.map(|b| (0..b.txs.len() as u64).filter_map(|i| tx(Some(b), i)).collect())
            .unwrap_or_default()
    };
    let header = |b: Option<&Built>| b.map(|b| (b.number, b.hash));
    match q {
        Query::HeaderByNumber(n) => Obs::Header(header(at(*n))),
        Query::HeaderByHash(h) => Obs::Header(header(by_hash(h))),
        Query::Latest => Obs::Latest(tip(chain)),
        Query::TxCount(n) => Obs::Count(at(*n).map_or(0, |b| b.txs.len() as u64)),
        Query::TxByBlockIndex(n, i) | Query::ReceiptByBlockIndex(n, i) => Obs::Tx(tx(at(*n), *i)),
        Query::TxByHash(h) | Query::ReceiptByTxHash(h) => Obs::Tx(by_tx(h)),
        Query::ReceiptsInBlock(n) => Obs::Txs(all(at(*n))),
        Query::TxsInBlock(n) => Obs::Hashes(at(*n).map(|b| b.txs.clone()).unwrap_or_default()),
        Query::Headers(specs) => Obs::Headers(
            specs
                .iter()
                .map(|s| match s {
                    HeaderSpecifier::Number(n) => header(at(*n)),
                    HeaderSpecifier::Hash(h) => header(by_hash(h)),
                })
                .collect(),
        ),
        Query::TxByBlockHashIndex(h, i) => Obs::Tx(tx(by_hash(h), *i)),
    }
}

/// The receipts `drain_above(k)` returns on `chain`.
fn drained(built: &[Built], chain: &Chain, k: u64) -> Vec<Vec<TxKey>> {
    chain[chain.partition_point(|&(n, _)| n <= k)..]
        .iter()
        .map(|&(n, _)| match expect(built, chain, &Query::ReceiptsInBlock(n)) {
            Obs::Txs(v) => v,
            other => unreachable!("{other:?}"),
        })
        .collect()
}

// ----- the model ------------------------------------------------------------

/// What a write does to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    Append(Vec<(u64, Tag)>),
    /// `truncate_above` and `drain_above` alike.
    Truncate(u64),
}

fn apply(chain: &mut Chain, effect: &Effect) {
    match effect {
        Effect::Append(blocks) => {
            for &(n, t) in blocks {
                // The driver numbers appends above every reachable tip.
                assert!(tip(chain).is_none_or(|top| top < n), "model: append {n} on {chain:?}");
                chain.push((n, t));
            }
        }
        Effect::Truncate(k) => {
            let keep = chain.partition_point(|&(n, _)| n <= *k);
            chain.truncate(keep);
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    effect: Effect,
    /// A dropped write future: queued, or not at all.
    maybe: bool,
}

/// The set of states the backend may be in; see the module docs.
#[derive(Debug, Default)]
struct Model {
    /// Candidates `(chain, p)`: `chain` after the first `p` pending writes.
    cands: BTreeSet<(Chain, usize)>,
    pending: Vec<Pending>,
}

impl Model {
    fn new() -> Self {
        Self { cands: BTreeSet::from([(Chain::new(), 0)]), pending: Vec::new() }
    }

    /// Every extension of every candidate (itself included).
    fn extensions(&self) -> BTreeSet<(Chain, usize)> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<(Chain, usize)> = self.cands.iter().cloned().collect();
        while let Some((chain, p)) = stack.pop() {
            if !out.insert((chain.clone(), p)) {
                continue;
            }
            if let Some(next) = self.pending.get(p) {
                let mut applied = chain.clone();
                apply(&mut applied, &next.effect);
                stack.push((applied, p + 1));
                if next.maybe {
                    stack.push((chain, p + 1));
                }
            }
        }
        out
    }

    /// Keeps the extensions whose chain satisfies `ok`; false when none does.
    fn observe(&mut self, ok: impl Fn(&Chain) -> bool) -> bool {
        let kept: BTreeSet<_> = self.extensions().into_iter().filter(|(c, _)| ok(c)).collect();
        if kept.is_empty() {
            return false;
        }
        self.cands = kept;
        self.compact();
        true
    }

    /// Forgets the pending writes every candidate has applied.
    fn compact(&mut self) {
        let done = self.cands.iter().map(|(_, p)| *p).min().unwrap_or(0);
        if done > 0 {
            self.pending.drain(..done);
            self.cands =
                std::mem::take(&mut self.cands).into_iter().map(|(c, p)| (c, p - done)).collect();
        }
    }

    fn push(&mut self, effect: Effect, maybe: bool) {
        self.pending.push(Pending { effect, maybe });
    }

    /// The last pending write has completed with `Ok`, and the chain just
    /// before it satisfied `before`: every earlier write has run. False when
    /// no candidate allows that.
    fn complete_last(&mut self, before: impl Fn(&Chain) -> bool) -> bool {
        let last = self.pending.len() - 1;
        let effect = self.pending[last].effect.clone();
        let kept: BTreeSet<(Chain, usize)> = self
            .extensions()
            .into_iter()
            .filter(|(c, p)| *p == last && before(c))
            .map(|(mut c, _)| {
                apply(&mut c, &effect);
                (c, 0)
            })
            .collect();
        if kept.is_empty() {
            return false;
        }
        self.cands = kept;
        self.pending.clear();
        true
    }

    /// The states the backend may end in once shutdown has run: the writer
    /// runs on through some prefix of the pending writes, then shutdown runs
    /// every write still queued, in order. Awaited writes have all returned
    /// by then, so what is still pending is dispatches (certain) and dropped
    /// write futures (maybe writes: possibly never queued, so they may be
    /// skipped).
    fn shutdown_states(&self) -> BTreeSet<Chain> {
        self.extensions()
            .into_iter()
            .map(|(mut chain, p)| {
                for rest in self.pending[p..].iter().filter(|w| !w.maybe) {
                    apply(&mut chain, &rest.effect);
                }
                chain
            })
            .collect()
    }

    /// One past the highest block any reachable state may hold.
    fn next_number(&self) -> u64 {
        let top = self.extensions().iter().filter_map(|(c, _)| tip(c)).max();
        top.map_or(1, |t| t + 1)
    }

    /// The most writes any candidate may still have to run.
    fn max_unapplied(&self) -> usize {
        self.cands.iter().map(|(_, p)| self.pending.len() - p).max().unwrap_or(0)
    }

    fn maybes(&self) -> usize {
        self.pending.iter().filter(|p| p.maybe).count()
    }

    fn describe(&self) -> String {
        format!("candidates {:?}\npending {:?}", self.cands, self.pending)
    }
}

// ----- the checker ----------------------------------------------------------

thread_local! {
    static CURRENT: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("current-thread runtime");
    static MULTI: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("multi-thread runtime");
}

/// Runs `fut` on the case's runtime, failing the case if it hangs.
fn block_on<F: Future>(rt: &Runtime, what: &dyn std::fmt::Debug, fut: F) -> F::Output {
    // The timer is created inside the runtime, which drives it.
    match rt.block_on(async { tokio::time::timeout(HANG, fut).await }) {
        Ok(out) => out,
        Err(_) => panic!("hang: {what:?} did not resolve within {HANG:?}"),
    }
}

/// Polls `fut` up to `polls` times, yielding to the runtime between polls,
/// then drops it. Its output, if it finished.
async fn poll_then_drop<F: Future>(fut: F, polls: u8) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for i in 0..polls {
        if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            return Some(out);
        }
        if i + 1 < polls {
            tokio::task::yield_now().await;
        }
    }
    None
}

struct Case<'r> {
    rt: &'r Runtime,
    setup: Setup,
    model: Model,
    built: Vec<Built>,
    handle: Option<ColdStorageHandle>,
    cancel: CancellationToken,
    shut: bool,
    log: Vec<String>,
}

impl Case<'_> {
    fn fail(&self, msg: &str) -> ! {
        panic!(
            "cold_ops: {msg}\nsetup {:?}\nops so far:\n  {}\n{}",
            self.setup,
            self.log.join("\n  "),
            self.model.describe()
        );
    }

    fn handle(&self) -> &ColdStorageHandle {
        self.handle.as_ref().expect("handle alive until the end")
    }

    /// Builds `count` fresh blocks numbered from the model's next number.
    fn blocks(&mut self, count: u64) -> (Vec<BlockData>, Effect) {
        let from = self.model.next_number();
        let mut data = Vec::new();
        let mut effect = Vec::new();
        for number in from..from + count {
            let tag = self.built.len() as Tag;
            let block = build_block(number, tag);
            let txs = block.transactions.iter().map(|t| *t.tx_hash()).collect();
            self.built.push(Built { number, hash: block.header.hash(), txs, data: block.clone() });
            effect.push((number, tag));
            data.push(block);
        }
        (data, Effect::Append(effect))
    }

    fn number(&self, raw: u8) -> u64 {
        u64::from(raw) % (self.model.next_number() + 1)
    }

    fn resolve(&self, r: Read) -> Query {
        let n = self.number(r.a);
        let i = u64::from(r.b) % (MAX_TXS + 1);
        let tag =
            (!self.built.is_empty()).then(|| &self.built[usize::from(r.a) % self.built.len()]);
        let unknown = B256::repeat_byte(r.a | 1);
        let block_hash = tag.map_or(unknown, |t| t.hash);
        let tx_hash = tag
            .and_then(|t| t.txs.get(usize::from(r.b) % t.txs.len().max(1)).copied())
            .unwrap_or(unknown);
        match r.kind % Read::KINDS {
            0 => Query::HeaderByNumber(n),
            1 => Query::HeaderByHash(block_hash),
            2 => Query::Latest,
            3 => Query::TxCount(n),
            4 => Query::TxByBlockIndex(n, i),
            5 => Query::TxByHash(tx_hash),
            6 => Query::ReceiptByBlockIndex(n, i),
            7 => Query::ReceiptByTxHash(tx_hash),
            8 => Query::ReceiptsInBlock(n),
            9 => Query::TxsInBlock(n),
            10 => Query::Headers(vec![
                HeaderSpecifier::Number(n),
                HeaderSpecifier::Hash(block_hash),
                HeaderSpecifier::Number(n + 1),
            ]),
            _ => Query::TxByBlockHashIndex(block_hash, i),
        }
    }

    /// Checks a read's result against the model.
    fn check_read(&mut self, q: &Query, result: ColdResult<Obs>) {
        match result {
            Ok(obs) => {
                if self.shut {
                    self.fail(&format!(
                        "{q:?} after shutdown returned {obs:?}, not TaskTerminated"
                    ));
                }
                let built = &self.built;
                let ok = self.model.observe(|c| expect(built, c, q) == obs);
                if !ok {
                    self.fail(&format!("{q:?} returned {obs:?}, which no allowed state gives"));
                }
            }
            Err(ColdStorageError::TaskTerminated) if self.shut => {}
            Err(err) => self.fail(&format!("{q:?} failed: {err:?}")),
        }
    }

    /// Resolves a write's arguments: its data and effect.
    fn prepare(&mut self, w: Write) -> (WriteCall, Effect) {
        match w {
            Write::AppendBlock => {
                let (mut data, effect) = self.blocks(1);
                (WriteCall::AppendBlock(Box::new(data.pop().expect("one block"))), effect)
            }
            Write::AppendBlocks(n) => {
                let (data, effect) = self.blocks(u64::from(n & 3));
                (WriteCall::AppendBlocks(data), effect)
            }
            Write::Truncate(raw) => {
                let k = self.number(raw);
                (WriteCall::Truncate(k), Effect::Truncate(k))
            }
            Write::Drain(raw) => {
                let k = self.number(raw);
                (WriteCall::Drain(k), Effect::Truncate(k))
            }
        }
    }

    /// Records a finished write's result in the model.
    fn finish_write(&mut self, call: &WriteCall, result: ColdResult<Option<Vec<Vec<TxKey>>>>) {
        match result {
            Ok(output) if !self.shut => {
                let built = &self.built;
                let ok = match (call, output) {
                    (WriteCall::Drain(k), Some(got)) => {
                        self.model.complete_last(|c| drained(built, c, *k) == got)
                    }
                    _ => self.model.complete_last(|_| true),
                };
                if !ok {
                    self.fail(&format!("{call:?} completed, but no allowed state gives that"));
                }
            }
            Ok(_) => self.fail(&format!("{call:?} after shutdown returned Ok")),
            Err(ColdStorageError::TaskTerminated) if self.shut => {
                // Not run: its reply was dropped unanswered (or never queued).
                self.model.pending.pop();
            }
            Err(err) => self.fail(&format!("{call:?} failed: {err:?}")),
        }
    }

    fn step(&mut self, op: Op) {
        self.log.push(format!("{op:?}"));
        let rt = self.rt;
        match op {
            Op::Read(r) | Op::ReadOnly(r) => {
                let q = self.resolve(r);
                let call = q.clone();
                let result = if matches!(op, Op::Read(_)) {
                    let h = self.handle().clone();
                    block_on(rt, &q, async move { h.query(call).await })
                } else {
                    let h = self.handle().reader();
                    block_on(rt, &q, async move { h.query(call).await })
                };
                self.check_read(&q, result);
            }
            Op::Write(w) => self.write(w),
            Op::DispatchAppend(n) => {
                let (data, effect) = self.blocks(1 + u64::from(n % 3));
                let result = self.handle().dispatch_append_blocks(data);
                self.dispatched(effect, result);
            }
            Op::DispatchTruncate(raw) => {
                let k = self.number(raw);
                let result = self.handle().dispatch_truncate_above(k);
                self.dispatched(Effect::Truncate(k), result);
            }
            Op::CancelRead(r, polls) => {
                let q = self.resolve(r);
                let h = self.handle().clone();
                let call = q.clone();
                let out =
                    block_on(rt, &q, async move { poll_then_drop(h.query(call), polls).await });
                if let Some(result) = out {
                    self.check_read(&q, result);
                }
            }
            Op::CancelWrite(w, polls) => {
                let (call, effect) = self.prepare(w);
                self.model.push(effect, true);
                let h = self.handle().clone();
                let c = call.clone();
                let out =
                    block_on(rt, &call, async move { poll_then_drop(c.run(&h), polls).await });
                match out {
                    Some(result) => {
                        // It finished: certainly queued (or certainly not).
                        if let Some(last) = self.model.pending.last_mut() {
                            last.maybe = false;
                        }
                        self.finish_write(&call, result);
                    }
                    None if self.shut => {
                        self.fail(&format!("{call:?} after shutdown still pending"))
                    }
                    None => {}
                }
            }
            Op::Yield(n) => block_on(rt, &op, async move {
                for _ in 0..=n {
                    tokio::task::yield_now().await;
                }
            }),
            Op::Settle => self.settle(),
            Op::Shutdown => {
                self.cancel.cancel();
                self.shut = true;
            }
        }
        if !self.shut
            && (self.model.maybes() > MAX_MAYBE
                || self.model.pending.len() > MAX_PENDING
                || self.model.cands.len() > MAX_CANDIDATES)
        {
            self.log.push("(settle)".into());
            self.settle();
        }
    }

    fn dispatched(&mut self, effect: Effect, result: Result<(), DispatchError>) {
        match result {
            Ok(()) if !self.shut => self.model.push(effect, false),
            Err(DispatchError::TaskTerminated) if self.shut => {}
            Err(DispatchError::Backpressure) if !self.shut => {
                if self.model.max_unapplied() < self.setup.write_queue {
                    self.fail(&format!(
                        "dispatch of {effect:?}: Backpressure with at most {} writes unapplied and {} slots",
                        self.model.max_unapplied(),
                        self.setup.write_queue
                    ));
                }
            }
            other => {
                self.fail(&format!("dispatch of {effect:?} (shut down: {}): {other:?}", self.shut))
            }
        }
    }

    /// Awaits a write and records its result.
    fn write(&mut self, w: Write) {
        let (call, effect) = self.prepare(w);
        self.model.push(effect, false);
        let h = self.handle().clone();
        let c = call.clone();
        let result = block_on(self.rt, &call, async move { c.run(&h).await });
        self.finish_write(&call, result);
    }

    /// An awaited empty append, then every header by number.
    fn settle(&mut self) {
        self.write(Write::AppendBlocks(0));
        let top = self.model.next_number();
        let q = Query::Headers((0..=top).map(HeaderSpecifier::Number).collect());
        let h = self.handle().clone();
        let call = q.clone();
        let result = block_on(self.rt, &q, async move { h.query(call).await });
        self.check_read(&q, result);
    }
}

/// A write with its arguments resolved.
#[derive(Debug, Clone)]
enum WriteCall {
    AppendBlock(Box<BlockData>),
    AppendBlocks(Vec<BlockData>),
    Truncate(u64),
    Drain(u64),
}

impl WriteCall {
    /// Runs the write; a drain's receipts, reduced to keys.
    async fn run(self, h: &ColdStorageHandle) -> ColdResult<Option<Vec<Vec<TxKey>>>> {
        match self {
            Self::AppendBlock(b) => h.append_block(*b).await.map(|()| None),
            Self::AppendBlocks(b) => h.append_blocks(b).await.map(|()| None),
            Self::Truncate(k) => h.truncate_above(k).await.map(|()| None),
            Self::Drain(k) => h.drain_above(k).await.map(|blocks| {
                Some(blocks.iter().map(|rs| rs.iter().map(receipt_key).collect()).collect())
            }),
        }
    }
}

/// Runs one case from raw bytes.
pub fn run(bytes: &[u8]) {
    let (setup, ops) = decode(bytes);
    run_ops(setup, &ops);
}

/// Runs one case: a fresh backend and task, `ops` in order, then shutdown
/// and a check of the backend's final state.
pub fn run_ops(setup: Setup, ops: &[Op]) {
    let run = |rt: &Runtime| run_on(rt, setup, ops);
    if setup.multi_thread { MULTI.with(run) } else { CURRENT.with(run) }
}

fn run_on(rt: &Runtime, setup: Setup, ops: &[Op]) {
    let backend = MemColdBackend::new();
    let cancel = CancellationToken::new();
    let (task, handle) = {
        let _enter = rt.enter();
        ColdStorageTask::with_config(backend.clone(), cancel.clone(), setup.config())
    };
    let task = rt.spawn(task.run());
    let mut case = Case {
        rt,
        setup,
        model: Model::new(),
        built: Vec::new(),
        handle: Some(handle),
        cancel,
        shut: false,
        log: Vec::new(),
    };
    for &op in ops {
        case.step(op);
    }

    // Shutdown, by the token or by dropping the last handle.
    case.log.push(if setup.end_by_drop { "(drop handle)" } else { "(cancel)" }.into());
    if !setup.end_by_drop {
        case.cancel.cancel();
    }
    drop(case.handle.take());
    case.shut = true;
    match rt.block_on(async { tokio::time::timeout(HANG, task).await }) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => case.fail(&format!("the task's run() failed: {err}")),
        Err(_) => case.fail("hang: run() did not return after shutdown"),
    }

    // The backend's final state, read directly.
    let top = case.model.next_number();
    let hashes: BTreeMap<B256, Tag> =
        case.built.iter().enumerate().map(|(t, b)| (b.hash, t as Tag)).collect();
    let mut last = Chain::new();
    let latest = block_on(rt, &"final state", async {
        for n in 0..=top {
            if let Some(h) =
                backend.get_header(HeaderSpecifier::Number(n)).await.expect("mem reads")
            {
                last.push((n, hashes.get(&h.hash()).copied().unwrap_or(Tag::MAX)));
            }
        }
        backend.get_latest_block().await.expect("mem reads")
    });
    if latest != tip(&last) {
        case.fail(&format!("final latest {latest:?} but headers {last:?}"));
    }
    if !case.model.shutdown_states().contains(&last) {
        case.fail(&format!(
            "final backend state {last:?} is not one the model allows (dispatched writes \
             must all have run, in order)"
        ));
    }
}
