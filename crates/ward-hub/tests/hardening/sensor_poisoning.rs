//! High 1: one sensor's forged alerts must not probe or poison correlation, the indicator feed or other offices.
