//! Atomically swappable holders for live reload: the sensor builds a new [`RuleSet`] (or
//! [`IndicatorSet`]) in the background and [`SharedRuleSet::store`]s it; workers call
//! [`SharedRuleSet::load`] once per batch and keep the `Arc` for the batch, so a swap never
//! blocks a worker and a worker never sees half a rule set.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::engine::RuleSet;
use crate::indicators::IndicatorSet;

/// The current rule set, swappable without locks.
#[derive(Debug)]
pub struct SharedRuleSet {
    inner: ArcSwap<RuleSet>,
}

impl SharedRuleSet {
    pub fn new(set: RuleSet) -> Self {
        SharedRuleSet { inner: ArcSwap::from_pointee(set) }
    }

    /// The current set; cheap (no lock), hold it for a batch of packets.
    pub fn load(&self) -> Arc<RuleSet> {
        self.inner.load_full()
    }

    /// Replaces the set; inspections already running finish with the old one.
    pub fn store(&self, set: RuleSet) {
        self.inner.store(Arc::new(set));
    }
}

impl Default for SharedRuleSet {
    fn default() -> Self {
        SharedRuleSet::new(RuleSet::empty())
    }
}

/// The current indicator set, swappable without locks.
#[derive(Debug)]
pub struct SharedIndicatorSet {
    inner: ArcSwap<IndicatorSet>,
}

impl SharedIndicatorSet {
    pub fn new(set: IndicatorSet) -> Self {
        SharedIndicatorSet { inner: ArcSwap::from_pointee(set) }
    }

    pub fn load(&self) -> Arc<IndicatorSet> {
        self.inner.load_full()
    }

    pub fn store(&self, set: IndicatorSet) {
        self.inner.store(Arc::new(set));
    }
}

impl Default for SharedIndicatorSet {
    fn default() -> Self {
        SharedIndicatorSet::new(IndicatorSet::default())
    }
}
