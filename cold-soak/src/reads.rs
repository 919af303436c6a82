//! The RPC-like readers: each call is checked against the record.

use crate::record::{ChainRecord, Verdict};
use alloy::primitives::{B256, BlockNumber};
use alloy::rpc::types::BlockNumberOrTag;
use cold_adapter::ColdStorageReadHandle;
use cold_testkit::chain::{CONTRACTS, SplitMix, contract};
use futures_util::StreamExt;
use signet_cold::{ColdResult, ColdStorageError, Filter, HeaderSpecifier, RpcLog};
use std::time::Duration;

/// Operation names, in report order, with their weight in the mix (of 100).
pub const MIX: &[(&str, u64)] = &[
    ("get_header_by_number", 18),
    ("get_header_by_hash", 8),
    ("get_tx_by_hash", 10),
    ("get_tx_by_block_and_index", 10),
    ("get_receipt_by_tx_hash", 10),
    ("get_receipt_by_block_and_index", 6),
    ("get_transactions_in_block", 8),
    ("get_receipts_in_block", 6),
    ("get_logs", 8),
    ("stream_logs", 3),
    ("get_headers (gas oracle)", 8),
    ("get_latest_block", 5),
];

fn pick_op(rng: &mut SplitMix) -> usize {
    let mut roll = rng.below(MIX.iter().map(|(_, w)| w).sum());
    for (i, (_, weight)) in MIX.iter().enumerate() {
        if roll < *weight {
            return i;
        }
        roll -= weight;
    }
    MIX.len() - 1
}

/// A block number in `1..=tip`, biased toward the most recent 32 blocks as
/// RPC traffic is.
fn pick_number(rng: &mut SplitMix, tip: BlockNumber) -> BlockNumber {
    if rng.below(2) == 0 { tip.saturating_sub(rng.below(32)).max(1) } else { rng.between(1, tip) }
}

/// `None` for a block that was present when the read began and still is.
fn missing(record: &ChainRecord, present: Option<B256>, what: impl FnOnce() -> String) -> Verdict {
    match present {
        Some(hash) if record.still_present(hash) => Verdict::Wrong(what()),
        _ => Verdict::Ok,
    }
}

fn first_bad(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    verdicts.into_iter().find(|v| *v != Verdict::Ok).unwrap_or(Verdict::Ok)
}

/// Runs one randomly chosen read and checks it. Returns the index into
/// [`MIX`] and the outcome.
///
/// # Errors
///
/// The read's own error, as the handle returned it (the soak counts it by
/// kind); a wrong answer is `Ok` with a failing [`Verdict`].
///
/// # Cancel safety
///
/// Cancel safe: it only reads. Dropped early, the handle's read gives its
/// permit back at once; `rng` has advanced by the draws already made.
pub async fn one_read(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    rng: &mut SplitMix,
) -> (usize, ColdResult<Verdict>) {
    let op = pick_op(rng);
    let tip = record.tip().unwrap_or(1).max(1);
    let outcome = match op {
        0 => header_by_number(h, record, pick_number(rng, tip)).await,
        1 => header_by_hash(h, record, rng.next_u64()).await,
        2 | 4 => by_tx_hash(h, record, rng, op == 4).await,
        3 | 5 => {
            let n = pick_number(rng, tip);
            by_block_and_index(h, record, rng, n, op == 5).await
        }
        6 | 7 => whole_block(h, record, pick_number(rng, tip), op == 7).await,
        8 | 9 => logs(h, record, rng, tip, op == 9).await,
        10 => gas_oracle(h, record, tip).await,
        _ => latest(h, record).await,
    };
    (op, outcome)
}

async fn header_by_number(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    n: BlockNumber,
) -> ColdResult<Verdict> {
    let present = record.present(n);
    let epoch = record.epoch();
    Ok(match h.get_header_by_number(n).await? {
        Some(header) => record.check_block(header.hash(), Some(n), epoch),
        None => missing(record, present, || format!("header {n} is committed but not found")),
    })
}

async fn header_by_hash(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    i: u64,
) -> ColdResult<Verdict> {
    let Some((hash, meta)) = record.any_block(i) else { return Ok(Verdict::Ok) };
    let present = record.still_present(hash).then_some(hash);
    let epoch = record.epoch();
    Ok(match h.get_header_by_hash(hash).await? {
        Some(header) if header.hash() != hash => {
            Verdict::Wrong(format!("asked for header {hash}, got {}", header.hash()))
        }
        Some(_) => record.check_block(hash, Some(meta.number), epoch),
        None => missing(record, present, || format!("header {hash} is committed but not found")),
    })
}

async fn by_tx_hash(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    rng: &mut SplitMix,
    receipt: bool,
) -> ColdResult<Verdict> {
    let Some((block, meta)) = record.any_block(rng.next_u64()) else { return Ok(Verdict::Ok) };
    let tx = meta.txs[rng.below(meta.txs.len() as u64) as usize];
    let present = record.still_present(block).then_some(block);
    let epoch = record.epoch();
    let found = if receipt {
        h.get_receipt_by_tx_hash(tx).await?.map(|r| (r.tx_hash, r.block_hash))
    } else {
        h.get_tx_by_hash(tx).await?.map(|c| (*c.inner().tx_hash(), c.meta().block_hash()))
    };
    Ok(match found {
        Some((got, in_block)) if got != tx || in_block != block => Verdict::Wrong(format!(
            "asked for tx {tx} of block {block}, got tx {got} of block {in_block}"
        )),
        Some(_) => record.check_block(block, Some(meta.number), epoch),
        None => missing(record, present, || format!("tx {tx} is committed but not found")),
    })
}

async fn by_block_and_index(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    rng: &mut SplitMix,
    n: BlockNumber,
    receipt: bool,
) -> ColdResult<Verdict> {
    let Some((_, meta)) = record.canonical(n) else { return Ok(Verdict::Ok) };
    let i = rng.below(meta.txs.len() as u64);
    let present = record.present(n);
    let epoch = record.epoch();
    let found = if receipt {
        h.get_receipt_by_block_and_index(n, i)
            .await?
            .map(|r| (r.tx_hash, r.block_hash, r.transaction_index))
    } else {
        h.get_tx_by_block_and_index(n, i)
            .await?
            .map(|c| (*c.inner().tx_hash(), c.meta().block_hash(), c.meta().transaction_index()))
    };
    let Some((tx, block, index)) = found else {
        return Ok(missing(record, present, || format!("tx {n}/{i} is committed but not found")));
    };
    let Some((holder, holder_meta)) = record.block_of_tx(tx) else {
        return Ok(Verdict::Wrong(format!("tx {n}/{i} returned unknown tx {tx}")));
    };
    if holder != block || index != i || holder_meta.txs.get(i as usize) != Some(&tx) {
        return Ok(Verdict::Wrong(format!("tx {n}/{i} returned tx {tx} of another place")));
    }
    Ok(record.check_block(block, Some(n), epoch))
}

async fn whole_block(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    n: BlockNumber,
    receipts: bool,
) -> ColdResult<Verdict> {
    let present = record.present(n);
    let epoch = record.epoch();
    let (txs, blocks): (Vec<B256>, Vec<B256>) = if receipts {
        h.get_receipts_in_block(n).await?.iter().map(|r| (r.tx_hash, r.block_hash)).unzip()
    } else {
        let txs: Vec<B256> =
            h.get_transactions_in_block(n).await?.iter().map(|t| *t.tx_hash()).collect();
        (txs, Vec::new())
    };
    if txs.is_empty() {
        return Ok(missing(record, present, || format!("block {n}'s txs are committed but empty")));
    }
    let Some(block) = record.block_with_txs(n, &txs) else {
        return Ok(Verdict::Wrong(format!(
            "block {n}'s {} txs match no generated block",
            txs.len()
        )));
    };
    if blocks.iter().any(|b| *b != block) {
        return Ok(Verdict::Wrong(format!("block {n}'s receipts name another block")));
    }
    Ok(record.check_block(block, Some(n), epoch))
}

/// The block range forms an RPC node passes to `eth_getLogs`.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// `fromBlock`..=`toBlock`, both numbers.
    Explicit,
    /// `fromBlock` only: up to the tip.
    OpenEnded,
    /// `fromBlock`..=`"latest"`.
    ToLatest,
    /// `blockHash`.
    Hash,
}

/// A `get_logs` or `stream_logs` of one contract, over a range in one of
/// the forms nodes send ([`Range`]), checked against the record: every log
/// is the filter's contract, from a generated block in the range; and where
/// every block of the range was present throughout, the count is exact (for
/// an open end, the logs up to the tip seen before the call).
async fn logs(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    rng: &mut SplitMix,
    tip: BlockNumber,
    stream: bool,
) -> ColdResult<Verdict> {
    let c = rng.below(CONTRACTS);
    let mut form =
        [Range::Explicit, Range::OpenEnded, Range::ToLatest, Range::Hash][rng.below(4) as usize];
    let from = match form {
        // Up to the tip: the last few blocks, as a node polling for new
        // logs asks (a wide open range would be a scan of the whole chain).
        Range::OpenEnded | Range::ToLatest => tip.saturating_sub(rng.below(4)).max(1),
        Range::Explicit | Range::Hash => pick_number(rng, tip),
    };
    let hash = record.present(from);
    if hash.is_none() {
        // Nothing to name by hash: the block is not (or no longer) stored.
        form = Range::Explicit;
    }
    let (filter, to) = match form {
        Range::Explicit => {
            let to = (from + 3).min(tip).max(from);
            (Filter::new().from_block(from).to_block(to), to)
        }
        Range::OpenEnded => (Filter::new().from_block(from), tip),
        Range::ToLatest => (Filter::new().from_block(from).to_block(BlockNumberOrTag::Latest), tip),
        Range::Hash => (Filter::new().at_block_hash(hash.expect("checked above")), from),
    };
    let filter = filter.address(contract(c));
    let present: Vec<Option<B256>> = (from..=to).map(|n| record.present(n)).collect();
    let epoch = record.epoch();
    let result: ColdResult<Vec<RpcLog>> = if stream {
        match h.stream_logs(filter, 10_000, Duration::from_secs(10)).await {
            Ok(stream) => stream.collect::<Vec<_>>().await.into_iter().collect(),
            Err(err) => Err(err),
        }
    } else {
        h.get_logs(filter, 10_000).await
    };
    let logs = match result {
        // Reorged out between the pick and the call: the right answer.
        Err(ColdStorageError::NotFound(_))
            if matches!(form, Range::Hash) && !hash.is_some_and(|h| record.still_present(h)) =>
        {
            return Ok(Verdict::Ok);
        }
        result => result?,
    };
    let verdict = first_bad(logs.iter().map(|log| {
        if log.inner.address != contract(c) {
            return Verdict::Wrong(format!(
                "log of {} under a filter for {}",
                log.inner.address,
                contract(c)
            ));
        }
        match (log.block_hash, log.block_number) {
            (Some(_), Some(n))
                if n < from || (!matches!(form, Range::OpenEnded | Range::ToLatest) && n > to) =>
            {
                Verdict::Wrong(format!("{form:?} filter {from}..={to} returned a log of block {n}"))
            }
            (Some(block), number) => record.check_block(block, number, epoch),
            (None, _) => Verdict::Wrong("log without a block hash".to_owned()),
        }
    }));
    if verdict != Verdict::Ok {
        return Ok(verdict);
    }
    // Every block in range present throughout: the count must be exact.
    let hashes: Option<Vec<B256>> = present.into_iter().collect();
    if let Some(hashes) = hashes
        && hashes.iter().all(|hash| record.still_present(*hash))
    {
        let expected = record.expected_logs(&hashes, c as usize);
        let got = logs.iter().filter(|l| l.block_number.is_some_and(|n| n <= to)).count();
        if expected != got {
            return Ok(Verdict::Wrong(format!(
                "{form:?} filter from {from} (to {to}): {got} logs of contract {c}, expected {expected}"
            )));
        }
    }
    Ok(Verdict::Ok)
}

async fn gas_oracle(
    h: &ColdStorageReadHandle,
    record: &ChainRecord,
    tip: BlockNumber,
) -> ColdResult<Verdict> {
    let numbers: Vec<BlockNumber> = (tip.saturating_sub(19).max(1)..=tip).collect();
    let present: Vec<Option<B256>> = numbers.iter().map(|n| record.present(*n)).collect();
    let epoch = record.epoch();
    let specs = numbers.iter().map(|n| HeaderSpecifier::Number(*n)).collect();
    let headers = h.get_headers(specs).await?;
    if headers.len() != numbers.len() {
        return Ok(Verdict::Wrong(format!(
            "{} headers for {} specs",
            headers.len(),
            numbers.len()
        )));
    }
    Ok(first_bad(numbers.iter().zip(present).zip(headers).map(
        |((n, present), header)| match header {
            Some(header) => record.check_block(header.hash(), Some(*n), epoch),
            None => missing(record, present, || format!("header {n} is committed but not found")),
        },
    )))
}

async fn latest(h: &ColdStorageReadHandle, record: &ChainRecord) -> ColdResult<Verdict> {
    Ok(match h.get_latest_block().await? {
        Some(n) if n > record.max_number() => {
            Verdict::Wrong(format!("latest block {n} was never appended"))
        }
        _ => Verdict::Ok,
    })
}
