//! `eth_getLogs` through the handle answers alike, and right, over every
//! backend: the cases L01–L09 of `../shared/cases/logs-semantics.md` over
//! mem and SQLite (Postgres in `tests/postgres.rs`), and a differential
//! property test of random chains and filters against the answer computed
//! from the chain.

mod common;

use alloy::primitives::B256;
use cold_adapter::ColdStorageConfig;
use common::logs::{self, Outcome};
use proptest::prelude::*;
use signet_cold::{BlockData, Filter};

/// One test per case of `logs::CASES` and backend, named after its id.
macro_rules! case_tests {
    ($($index:literal: $mem:ident, $sqlite:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $mem() {
            let run = common::start(common::mem().backend, ColdStorageConfig::default());
            logs::run_case(&run.handle, logs::CASES[$index].1, "mem").await;
            run.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let store = common::sqlite().await;
            let run = common::start(store.backend.clone(), ColdStorageConfig::default());
            logs::run_case(&run.handle, logs::CASES[$index].1, "sqlite").await;
            run.stop().await;
        }
    )*};
}

case_tests! {
    0: l01_open_ended_mem, l01_open_ended_sqlite;
    1: l02_block_hash_mem, l02_block_hash_sqlite;
    2: l03_unknown_block_hash_mem, l03_unknown_block_hash_sqlite;
    3: l04_tags_mem, l04_tags_sqlite;
    4: l05_from_above_to_mem, l05_from_above_to_sqlite;
    5: l06_address_and_topic_filters_mem, l06_address_and_topic_filters_sqlite;
    6: l07_max_logs_mem, l07_max_logs_sqlite;
    7: l08_the_same_through_stream_logs_mem, l08_the_same_through_stream_logs_sqlite;
    8: l09_after_a_reorg_mem, l09_after_a_reorg_sqlite;
}

/// The macro's names and `logs::CASES` agree.
#[test]
fn every_case_has_its_tests() {
    let ids: Vec<&str> = logs::CASES.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [
            "l01_open_ended",
            "l02_block_hash",
            "l03_unknown_block_hash",
            "l04_tags",
            "l05_from_above_to",
            "l06_address_and_topic_filters",
            "l07_max_logs",
            "l08_the_same_through_stream_logs",
            "l09_after_a_reorg",
        ]
    );
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random chains and filters, through the handle over mem and SQLite
    /// (and Postgres in `tests/postgres.rs`), agree with the answer
    /// computed from the chain: both `get_logs` and `stream_logs`.
    #[test]
    fn random_filters_agree_with_the_chain_on_every_backend(
        (seed, tip, queries) in logs::case()
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(differential(seed, tip, queries));
    }
}

async fn differential(seed: u64, tip: u64, queries: Vec<logs::Query>) {
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
    let handles = [(&runs[0].0.handle, "mem"), (&runs[1].0.handle, "sqlite")];
    logs::run_queries(&handles, &blocks, queries).await;
    for (run, _) in runs {
        run.stop().await;
    }
}
