//! Realistic blocks, generated deterministically from a seed.
//!
//! A block is identified by its number and a *branch*: after a reorg the
//! follower re-appends the same numbers on a new branch, and every branch
//! produces different hashes for the same number.

use alloy::{
    consensus::{
        EthereumTxEnvelope, Header, Receipt as AlloyReceipt, Sealable, Signed, TxEip1559, TxLegacy,
        TxType, transaction::Recovered,
    },
    primitives::{Address, B256, Bytes, Log, LogData, Signature, TxKind, U256},
};
use signet_cold::BlockData;
use signet_storage_types::{Receipt, RecoveredTx};

/// A small, fast, deterministic pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator whose whole sequence is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; 0 when `n` is 0.
    pub const fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A value in `lo..=hi`.
    pub const fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// 32 random bytes.
    pub fn b256(&mut self) -> B256 {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        B256::from(out)
    }
}

/// Contract addresses the generated logs come from (a small set, so filters
/// by address match across blocks).
pub fn contract(i: u64) -> Address {
    Address::with_last_byte(0xC0 + (i % CONTRACTS) as u8)
}

/// Event signatures used as topic 0 (a small set, so topic filters match).
pub fn event_signature(i: u64) -> B256 {
    B256::with_last_byte(0xE0 + (i % EVENTS) as u8)
}

/// Number of distinct log addresses.
pub const CONTRACTS: u64 = 8;
/// Number of distinct topic-0 event signatures.
pub const EVENTS: u64 = 4;

/// The parameters that fix every generated block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Most transactions in one block (at least 1 is generated per block).
    pub max_txs: u64,
    /// Most logs in one receipt.
    pub max_logs: u64,
}

impl Default for ChainSpec {
    fn default() -> Self {
        Self { seed: 1, max_txs: 12, max_logs: 4 }
    }
}

impl ChainSpec {
    /// A spec with the default shape and the given seed.
    pub fn with_seed(seed: u64) -> Self {
        Self { seed, ..Self::default() }
    }

    /// Block `number` of `branch`, whose parent has hash `parent`.
    ///
    /// The same arguments always produce the same block; different
    /// branches produce different header and transaction hashes.
    pub fn block(&self, number: u64, branch: u64, parent: B256) -> BlockData {
        let mut rng = SplitMix::new(
            self.seed ^ number.wrapping_mul(0x1000_0000_01b3) ^ branch.wrapping_mul(0x5851_f42d),
        );
        let tx_count = rng.between(1, self.max_txs.max(1));
        let mut transactions = Vec::with_capacity(tx_count as usize);
        let mut receipts = Vec::with_capacity(tx_count as usize);
        let mut cumulative_gas = 0u64;
        for index in 0..tx_count {
            // Unique per (number, branch, index) so tx hashes never repeat.
            let nonce = (number << 24) | ((branch & 0xfff) << 12) | index;
            let to = TxKind::Call(Address::with_last_byte(rng.below(200) as u8));
            let value = U256::from(rng.below(1_000_000));
            let input = Bytes::from(rng.next_u64().to_be_bytes().to_vec());
            let gas = rng.between(21_000, 200_000);
            let signature = Signature::new(
                U256::from(rng.next_u64() | 1),
                U256::from(rng.next_u64() | 1),
                rng.below(2) == 1,
            );
            let (tx_type, envelope) = if rng.below(3) == 0 {
                let tx = TxLegacy {
                    chain_id: Some(519),
                    nonce,
                    gas_price: 1_000_000_000 + u128::from(rng.below(1_000)),
                    gas_limit: gas,
                    to,
                    value,
                    input,
                };
                (TxType::Legacy, EthereumTxEnvelope::Legacy(Signed::new_unhashed(tx, signature)))
            } else {
                let tx = TxEip1559 {
                    chain_id: 519,
                    nonce,
                    gas_limit: gas,
                    max_fee_per_gas: 2_000_000_000 + u128::from(rng.below(1_000)),
                    max_priority_fee_per_gas: 1_000_000 + u128::from(rng.below(1_000)),
                    to,
                    value,
                    access_list: Default::default(),
                    input,
                };
                (TxType::Eip1559, EthereumTxEnvelope::Eip1559(Signed::new_unhashed(tx, signature)))
            };
            let sender = Address::with_last_byte(rng.below(250) as u8 + 1);
            let tx: RecoveredTx = Recovered::new_unchecked(envelope, sender);
            transactions.push(tx);

            cumulative_gas += gas;
            let logs = (0..rng.below(self.max_logs + 1))
                .map(|_| {
                    let mut topics = vec![event_signature(rng.below(EVENTS))];
                    for _ in 0..rng.below(3) {
                        topics.push(rng.b256());
                    }
                    let data = Bytes::from(rng.next_u64().to_be_bytes().to_vec());
                    Log {
                        address: contract(rng.below(CONTRACTS)),
                        data: LogData::new_unchecked(topics, data),
                    }
                })
                .collect();
            receipts.push(Receipt {
                tx_type,
                inner: AlloyReceipt {
                    status: (rng.below(20) != 0).into(),
                    cumulative_gas_used: cumulative_gas,
                    logs,
                },
            });
        }

        let header = Header {
            parent_hash: parent,
            number,
            timestamp: 1_700_000_000 + number * 12,
            gas_limit: 30_000_000,
            gas_used: cumulative_gas,
            base_fee_per_gas: Some(1_000_000_000 + rng.below(100_000_000)),
            beneficiary: Address::with_last_byte(rng.below(256) as u8),
            mix_hash: rng.b256(),
            extra_data: Bytes::from(branch.to_be_bytes().to_vec()),
            ..Default::default()
        };
        BlockData::new(header.seal_slow(), transactions, receipts, Vec::new(), None)
    }

    /// Blocks `first..=last` of `branch`, chained by parent hash, starting
    /// from a parent with hash `parent`.
    pub fn blocks(&self, first: u64, last: u64, branch: u64, parent: B256) -> Vec<BlockData> {
        let mut parent = parent;
        (first..=last)
            .map(|number| {
                let block = self.block(number, branch, parent);
                parent = block.header.hash();
                block
            })
            .collect()
    }
}
