//! `eth_getLogs` through the handle answers alike, and right, over every
//! backend: the cases L01–L09 of `../shared/cases/logs-semantics.md` over
//! mem and SQLite (Postgres in `tests/postgres.rs`), and a differential
//! property test of random chains and filters against the answer computed
//! from the chain.

mod common;

use alloy::{
    primitives::B256,
    rpc::types::{BlockNumberOrTag, FilterBlockOption},
};
use cold_adapter::ColdStorageConfig;
use common::logs::{self, Outcome};
use proptest::prelude::*;
use signet_cold::{BlockData, Filter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l01_to_l09_mem() {
    let run = common::start(common::mem().backend, ColdStorageConfig::default());
    logs::all_cases(&run.handle, "mem").await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l01_to_l09_sqlite() {
    let store = common::sqlite().await;
    let run = common::start(store.backend.clone(), ColdStorageConfig::default());
    logs::all_cases(&run.handle, "sqlite").await;
    run.stop().await;
}

/// An empty store: every range is empty, a hash is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_an_empty_store() {
    let store = common::sqlite().await;
    for (h, name) in [
        (common::start(common::mem().backend, ColdStorageConfig::default()), "mem"),
        (common::start(store.backend.clone(), ColdStorageConfig::default()), "sqlite"),
    ] {
        for filter in [Filter::new(), Filter::new().from_block(0u64).to_block(5u64)] {
            let got = logs::check(&h.handle, &[], name, filter, usize::MAX).await;
            assert_eq!(got, Outcome::Logs(vec![]), "{name}");
        }
        let unknown = Filter::new().at_block_hash(B256::repeat_byte(1));
        assert_eq!(
            logs::check(&h.handle, &[], name, unknown, 10).await,
            Outcome::UnknownBlock,
            "{name}"
        );
        h.stop().await;
    }
}

/// A random block bound: a number around the chain, or a tag, or none.
fn bound(tip: u64) -> impl Strategy<Value = Option<BlockNumberOrTag>> {
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
fn filter(tip: u64) -> impl Strategy<Value = (Filter, Option<u64>)> {
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

/// A chain, and queries over it: `(filter, block whose hash to use, max_logs)`.
fn case() -> impl Strategy<Value = (u64, u64, Vec<(Filter, Option<u64>, usize)>)> {
    (any::<u64>(), 1..8u64).prop_flat_map(|(seed, tip)| {
        let query = (filter(tip), prop_oneof![Just(usize::MAX), 0..40usize])
            .prop_map(|((f, hash_of), max)| (f, hash_of, max));
        (Just(seed), Just(tip), prop::collection::vec(query, 1..12))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random chains and filters, through the handle over mem and SQLite
    /// (and Postgres in `tests/postgres.rs`), agree with the answer
    /// computed from the chain: both `get_logs` and `stream_logs`.
    #[test]
    fn random_filters_agree_with_the_chain_on_every_backend(
        (seed, tip, queries) in case()
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(differential(seed, tip, queries));
    }
}

async fn differential(seed: u64, tip: u64, queries: Vec<(Filter, Option<u64>, usize)>) {
    let blocks: Vec<BlockData> =
        cold_testkit::chain::ChainSpec::with_seed(seed).blocks(1, tip, 0, Default::default());
    let store = common::sqlite().await;
    let runs = [
        (common::start(common::mem().backend, ColdStorageConfig::default()), "mem"),
        (common::start(store.backend.clone(), ColdStorageConfig::default()), "sqlite"),
    ];
    for (run, _) in &runs {
        run.handle.append_blocks(blocks.clone()).await.unwrap();
    }
    for (mut filter, hash_of, max_logs) in queries {
        if let Some(n) = hash_of {
            // A stored block's hash, or (above the tip) one nobody has.
            let hash =
                blocks.get(n as usize - 1).map_or(B256::repeat_byte(0xAB), |b| b.header.hash());
            filter.block_option = FilterBlockOption::AtBlockHash(hash);
        }
        for (run, name) in &runs {
            let what = format!("{name}: {filter:?}, max_logs {max_logs}, tip {tip}");
            logs::check(&run.handle, &blocks, &what, filter.clone(), max_logs).await;
        }
    }
    for (run, _) in runs {
        run.stop().await;
    }
}
