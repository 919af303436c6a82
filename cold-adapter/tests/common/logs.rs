//! `eth_getLogs` through the handle: the cases L01–L09 of
//! `../shared/cases/logs-semantics.md` and the answer each is checked
//! against, computed from the generated chain alone.
//!
//! Every case runs over whatever backend the caller starts the task on, so
//! `tests/logs.rs` runs them over mem and SQLite and `tests/postgres.rs`
//! over Postgres.

use alloy::{
    primitives::{B256, Log},
    rpc::types::{BlockNumberOrTag, FilterBlockOption},
};
use cold_adapter::{ColdStorageHandle, InvalidBlockRange};
use futures_util::StreamExt;
use proptest::prelude::*;
use signet_cold::{BlockData, ColdResult, ColdStorageError, Filter, RpcLog};
use std::time::Duration;

/// One log as the handle must return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub block: u64,
    pub block_hash: B256,
    pub tx_index: u64,
    pub log_index: u64,
    pub log: Log,
}

/// What a query must come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Logs(Vec<Found>),
    /// `ColdStorageError::NotFound`: an unknown block hash.
    UnknownBlock,
    /// `InvalidBlockRange`: explicit `fromBlock` above `toBlock`.
    InvalidRange,
    /// `ColdStorageError::TooManyLogs`.
    TooMany,
}

impl Outcome {
    pub fn logs(&self) -> &[Found] {
        match self {
            Outcome::Logs(logs) => logs,
            other => panic!("expected logs, got {other:?}"),
        }
    }
}

fn found(log: &RpcLog) -> Found {
    Found {
        block: log.block_number.expect("block number"),
        block_hash: log.block_hash.expect("block hash"),
        tx_index: log.transaction_index.expect("transaction index"),
        log_index: log.log_index.expect("log index"),
        log: log.inner.clone(),
    }
}

fn outcome_of_err(err: ColdStorageError) -> Outcome {
    match err {
        ColdStorageError::NotFound(_) => Outcome::UnknownBlock,
        ColdStorageError::TooManyLogs { .. } => Outcome::TooMany,
        ColdStorageError::Backend(inner) if inner.downcast_ref::<InvalidBlockRange>().is_some() => {
            Outcome::InvalidRange
        }
        other => panic!("unexpected error: {other}"),
    }
}

/// The answer for `filter` over a store holding exactly `blocks` (in
/// order, contiguous), by the rules on `get_logs`: computed from the
/// blocks, not from any backend.
pub fn expected(blocks: &[BlockData], filter: &Filter, max_logs: usize) -> Outcome {
    let tip = blocks.last().map(|b| b.header.number);
    let range = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            match blocks.iter().find(|b| b.header.hash() == hash) {
                Some(b) => Some((b.header.number, b.header.number)),
                None => return Outcome::UnknownBlock,
            }
        }
        FilterBlockOption::Range { from_block, to_block } => {
            if let (Some(BlockNumberOrTag::Number(from)), Some(BlockNumberOrTag::Number(to))) =
                (from_block, to_block)
                && from > to
            {
                return Outcome::InvalidRange;
            }
            tip.and_then(|tip| {
                let at = |bound: Option<BlockNumberOrTag>| match bound {
                    Some(BlockNumberOrTag::Number(n)) => n,
                    Some(BlockNumberOrTag::Earliest) => 0,
                    _ => tip,
                };
                let (from, to) = (at(from_block), at(to_block).min(tip));
                (from <= to).then_some((from, to))
            })
        }
    };
    let Some((from, to)) = range else { return Outcome::Logs(Vec::new()) };
    let mut logs = Vec::new();
    for block in blocks.iter().filter(|b| (from..=to).contains(&b.header.number)) {
        let mut log_index = 0;
        for (tx_index, receipt) in block.receipts.iter().enumerate() {
            for log in &receipt.inner.logs {
                if matches(filter, log) {
                    logs.push(Found {
                        block: block.header.number,
                        block_hash: block.header.hash(),
                        tx_index: tx_index as u64,
                        log_index,
                        log: log.clone(),
                    });
                }
                log_index += 1;
            }
        }
    }
    if logs.len() > max_logs { Outcome::TooMany } else { Outcome::Logs(logs) }
}

/// Address and topics, as `eth_getLogs` matches them: each set given must
/// contain the log's value at that place.
fn matches(filter: &Filter, log: &Log) -> bool {
    let address_ok = filter.address.is_empty() || filter.address.iter().any(|a| *a == log.address);
    let topics_ok = filter.topics.iter().enumerate().all(|(i, wanted)| {
        wanted.is_empty() || log.topics().get(i).is_some_and(|t| wanted.iter().any(|w| w == t))
    });
    address_ok && topics_ok
}

/// `get_logs` through the handle, as an [`Outcome`].
pub async fn get(h: &ColdStorageHandle, filter: Filter, max_logs: usize) -> Outcome {
    match h.get_logs(filter, max_logs).await {
        Ok(logs) => Outcome::Logs(logs.iter().map(found).collect()),
        Err(err) => outcome_of_err(err),
    }
}

/// `stream_logs` through the handle, as an [`Outcome`].
pub async fn stream(h: &ColdStorageHandle, filter: Filter, max_logs: usize) -> Outcome {
    let stream = match h.stream_logs(filter, max_logs, Duration::from_secs(30)).await {
        Ok(stream) => stream,
        Err(err) => return outcome_of_err(err),
    };
    let items: Vec<ColdResult<RpcLog>> = stream.collect().await;
    let mut logs = Vec::new();
    for item in items {
        match item {
            Ok(log) => logs.push(found(&log)),
            Err(err) => return outcome_of_err(err),
        }
    }
    Outcome::Logs(logs)
}

/// Checks `filter` through `get_logs` and `stream_logs` (L08) against
/// [`expected`].
pub async fn check(
    h: &ColdStorageHandle,
    blocks: &[BlockData],
    what: &str,
    filter: Filter,
    max_logs: usize,
) -> Outcome {
    let want = expected(blocks, &filter, max_logs);
    same(&get(h, filter.clone(), max_logs).await, &want, &format!("{what}: get_logs"));
    same(&stream(h, filter, max_logs).await, &want, &format!("{what}: stream_logs"));
    want
}

/// `got == want`, or a panic that says where they part, briefly.
fn same(got: &Outcome, want: &Outcome, what: &str) {
    if got == want {
        return;
    }
    let brief = |o: &Outcome| match o {
        Outcome::Logs(logs) => format!(
            "{} logs in blocks {:?}",
            logs.len(),
            logs.iter().map(|l| l.block).collect::<std::collections::BTreeSet<_>>()
        ),
        other => format!("{other:?}"),
    };
    panic!("{what}: got {}, want {}", brief(got), brief(want));
}

/// The fixture: blocks 1..=5, with logs from a few addresses and topics.
pub fn fixture() -> Vec<BlockData> {
    super::chain(5)
}

/// One of the cases L01–L09: `h`'s store holds exactly `blocks` (the
/// [`fixture`]); `backend` names it in failures.
pub type Case = for<'a> fn(
    &'a ColdStorageHandle,
    &'a [BlockData],
    &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

/// The cases by id, each run through `get_logs` and `stream_logs` (every
/// [`check`] compares both: that is L08, which also runs L01–L07 on its own).
pub const CASES: [(&str, Case); 9] = [
    ("l01_open_ended", |h, b, n| Box::pin(l01(h, b, n))),
    ("l02_block_hash", |h, b, n| Box::pin(l02(h, b, n))),
    ("l03_unknown_block_hash", |h, b, n| Box::pin(l03(h, b, n))),
    ("l04_tags", |h, b, n| Box::pin(l04(h, b, n))),
    ("l05_from_above_to", |h, b, n| Box::pin(l05(h, b, n))),
    ("l06_address_and_topic_filters", |h, b, n| Box::pin(l06(h, b, n))),
    ("l07_max_logs", |h, b, n| Box::pin(l07(h, b, n))),
    ("l08_the_same_through_stream_logs", |h, b, n| Box::pin(l08(h, b, n))),
    ("l09_after_a_reorg", |h, b, n| Box::pin(l09(h, b, n))),
];

/// Puts the [`fixture`] in `h`'s (empty) store and runs `case` on it.
pub async fn run_case(h: &ColdStorageHandle, case: Case, backend: &str) {
    let blocks = fixture();
    h.append_blocks(blocks.clone()).await.unwrap();
    case(h, &blocks, backend).await;
}

const ALL: usize = usize::MAX;

fn open_ended() -> Filter {
    Filter::new().from_block(0u64)
}

/// L01: open-ended is every log up to the tip.
async fn l01(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let open = check(h, blocks, "L01 open", open_ended(), ALL).await;
    let closed = check(h, blocks, "L01 closed", open_ended().to_block(5u64), ALL).await;
    assert_eq!(open, closed, "L01 {backend}");
    assert!(open.logs().len() > 10, "L01 {backend}: the fixture has logs");
}

/// L02: a block hash is exactly that block.
async fn l02(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let hash3 = blocks[2].header.hash();
    let at3 = check(h, blocks, "L02", Filter::new().at_block_hash(hash3), ALL).await;
    assert!(!at3.logs().is_empty() && at3.logs().iter().all(|l| l.block == 3), "L02 {backend}");
}

/// L03: an unknown hash is the unknown-block error.
async fn l03(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let unknown = Filter::new().at_block_hash(B256::repeat_byte(7));
    assert_eq!(check(h, blocks, "L03", unknown, ALL).await, Outcome::UnknownBlock, "L03 {backend}");
}

/// L04: tags, and a toBlock above the tip.
async fn l04(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let open = check(h, blocks, "L04 open", open_ended(), ALL).await;
    let earliest = Filter::new().from_block(BlockNumberOrTag::Earliest);
    assert_eq!(check(h, blocks, "L04 earliest", earliest, ALL).await, open, "L04 {backend}");
    for tag in [
        BlockNumberOrTag::Latest,
        BlockNumberOrTag::Safe,
        BlockNumberOrTag::Finalized,
        BlockNumberOrTag::Pending,
    ] {
        let to_tag = open_ended().to_block(tag);
        assert_eq!(check(h, blocks, "L04 to tag", to_tag, ALL).await, open, "L04 {backend}");
        let at_tip = check(h, blocks, "L04 tag", Filter::new().from_block(tag).to_block(tag), ALL);
        assert!(at_tip.await.logs().iter().all(|l| l.block == 5), "L04 {backend}: {tag:?}");
    }
    let above = Filter::new().from_block(2u64).to_block(1_000u64);
    let above = check(h, blocks, "L04 above the tip", above, ALL).await;
    assert_eq!(above, check(h, blocks, "L04", Filter::new().from_block(2u64), ALL).await);
    let huge = open_ended().to_block(u64::MAX);
    assert_eq!(check(h, blocks, "L04 u64::MAX", huge, ALL).await, open, "L04 {backend}");
}

/// L05: from above to is geth's invalid-range error; empty once tags resolve.
async fn l05(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let backwards = Filter::new().from_block(4u64).to_block(2u64);
    assert_eq!(check(h, blocks, "L05", backwards, ALL).await, Outcome::InvalidRange, "{backend}");
    let tag_backwards = Filter::new().from_block(BlockNumberOrTag::Latest).to_block(2u64);
    let empty = Outcome::Logs(vec![]);
    assert_eq!(check(h, blocks, "L05 tags", tag_backwards, ALL).await, empty, "{backend}");
    let past_tip = Filter::new().from_block(9u64);
    assert_eq!(check(h, blocks, "L05 past tip", past_tip, ALL).await, empty, "{backend}");
}

/// L06: address and topic filters with every range form.
async fn l06(h: &ColdStorageHandle, blocks: &[BlockData], _backend: &str) {
    let open = check(h, blocks, "L06 open", open_ended(), ALL).await;
    let address = open.logs()[0].log.address;
    let topic0 = open.logs()[0].log.topics()[0];
    let ranges = [
        open_ended(),
        Filter::new().from_block(1u64).to_block(5u64),
        Filter::new().at_block_hash(blocks[2].header.hash()),
        Filter::new().from_block(BlockNumberOrTag::Earliest).to_block(BlockNumberOrTag::Latest),
        Filter::new().from_block(3u64).to_block(99u64),
    ];
    for range in ranges {
        for filter in [
            range.clone().address(address),
            range.clone().event_signature(topic0),
            range.clone().address(address).event_signature(topic0),
            range.clone().address(vec![address, open.logs().last().unwrap().log.address]),
        ] {
            check(h, blocks, "L06", filter, ALL).await;
        }
    }
}

/// L07: max_logs, the same on every backend.
async fn l07(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    let block3 = Filter::new().at_block_hash(blocks[2].header.hash());
    let at3 = check(h, blocks, "L07 all", block3.clone(), ALL).await;
    let n = at3.logs().len();
    assert_eq!(check(h, blocks, "L07 at max", block3.clone(), n).await, at3, "L07 {backend}");
    assert_eq!(check(h, blocks, "L07 over", block3, n - 1).await, Outcome::TooMany);
    assert_eq!(check(h, blocks, "L07 open over", open_ended(), 3).await, Outcome::TooMany);
}

/// L08: the cases L01–L07 through `stream_logs` too: every [`check`]
/// compares `stream_logs` with `get_logs` and with the chain.
async fn l08(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    l01(h, blocks, backend).await;
    l02(h, blocks, backend).await;
    l03(h, blocks, backend).await;
    l04(h, blocks, backend).await;
    l05(h, blocks, backend).await;
    l06(h, blocks, backend).await;
    l07(h, blocks, backend).await;
}

/// L09: a reorg. Blocks 4 and 5 replaced by another branch; an open-ended
/// query after the truncate has completed sees only the new branch.
async fn l09(h: &ColdStorageHandle, blocks: &[BlockData], backend: &str) {
    h.truncate_above(3).await.unwrap();
    let new_branch =
        cold_testkit::chain::ChainSpec::with_seed(7).blocks(4, 5, 1, blocks[2].header.hash());
    h.append_blocks(new_branch.clone()).await.unwrap();
    let reorged: Vec<BlockData> = blocks[..3].iter().cloned().chain(new_branch).collect();
    let after = check(h, &reorged, "L09", open_ended(), ALL).await;
    assert!(after.logs().iter().all(|l| l.block < 4 || l.block_hash != blocks[3].header.hash()));
    let old = Filter::new().at_block_hash(blocks[4].header.hash());
    assert_eq!(
        check(h, &reorged, "L09 old hash", old, ALL).await,
        Outcome::UnknownBlock,
        "L09 {backend}: a reorged-out block is unknown"
    );
}

/// A random block bound: a number around the chain, or a tag, or none.
pub fn bound(tip: u64) -> impl Strategy<Value = Option<BlockNumberOrTag>> {
    prop_oneof![
        2 => (0..=tip + 3).prop_map(|n| Some(BlockNumberOrTag::Number(n))),
        1 => Just(None),
        1 => prop_oneof![
            Just(BlockNumberOrTag::Earliest),
            Just(BlockNumberOrTag::Latest),
            Just(BlockNumberOrTag::Safe),
            Just(BlockNumberOrTag::Finalized),
            Just(BlockNumberOrTag::Pending),
        ]
        .prop_map(Some),
    ]
}

/// A random filter over a chain of `tip` blocks: a range or a block hash
/// (`hash` picks a stored block, or none when above the tip), and
/// addresses and topics drawn from the generator's small sets.
pub fn filter(tip: u64) -> impl Strategy<Value = (Filter, Option<u64>)> {
    let block_option = prop_oneof![
        3 => (bound(tip), bound(tip)).prop_map(|(from_block, to_block)| {
            (FilterBlockOption::Range { from_block, to_block }, None)
        }),
        1 => (1..=tip + 1).prop_map(|n| (FilterBlockOption::AtBlockHash(B256::ZERO), Some(n))),
    ];
    let addresses = prop::collection::vec(0..cold_testkit::chain::CONTRACTS, 0..3);
    let topics = prop::collection::vec(0..cold_testkit::chain::EVENTS, 0..3);
    (block_option, addresses, topics).prop_map(|((block_option, hash_of), addresses, topics)| {
        let mut filter = Filter::new();
        filter.block_option = block_option;
        if !addresses.is_empty() {
            filter = filter.address(
                addresses.into_iter().map(cold_testkit::chain::contract).collect::<Vec<_>>(),
            );
        }
        if !topics.is_empty() {
            filter = filter.event_signature(
                topics.into_iter().map(cold_testkit::chain::event_signature).collect::<Vec<_>>(),
            );
        }
        (filter, hash_of)
    })
}

/// One query: the filter, the block whose hash to use instead of its range
/// (if any), and `max_logs`.
pub type Query = (Filter, Option<u64>, usize);

/// A chain (seed, tip), and queries over it.
pub fn case() -> impl Strategy<Value = (u64, u64, Vec<Query>)> {
    (any::<u64>(), 1..8u64).prop_flat_map(|(seed, tip)| {
        let query = (filter(tip), prop_oneof![Just(usize::MAX), 0..40usize])
            .prop_map(|((f, hash_of), max)| (f, hash_of, max));
        (Just(seed), Just(tip), prop::collection::vec(query, 1..12))
    })
}

/// Runs `queries` over a chain of `blocks` through every handle (each a
/// task whose store holds exactly `blocks`), checking each against
/// [`expected`], through `get_logs` and `stream_logs`.
pub async fn run_queries(
    handles: &[(&ColdStorageHandle, &str)],
    blocks: &[BlockData],
    queries: Vec<Query>,
) {
    for (mut filter, hash_of, max_logs) in queries {
        if let Some(n) = hash_of {
            // A stored block's hash, or (above the tip) one nobody has.
            let hash =
                blocks.get(n as usize - 1).map_or(B256::repeat_byte(0xAB), |b| b.header.hash());
            filter.block_option = FilterBlockOption::AtBlockHash(hash);
        }
        for (handle, name) in handles {
            let what = format!("{name}: {filter:?}, max_logs {max_logs}, tip {}", blocks.len());
            check(handle, blocks, &what, filter.clone(), max_logs).await;
        }
    }
}
