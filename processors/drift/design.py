"""The drift design constants, in one place: the detectors, the calibration and the stage read them.

Changing one changes what the calibrated thresholds mean: re-run the calibration
(``python bench/drift.py --calibrate``) and paste its fits into ``calibration``.
"""

from __future__ import annotations

ARL = 10_000.0
"""default calls between false alarms on an unchanged stream, all its features of one kind
together (content and performance each have their own budget)"""

MIN_BASELINE = 32
"""calls a feature's baseline needs before its detectors may alarm"""
FULL_BASELINE = 512
"""size the numeric reference sample grows to; thresholds tighten as it grows"""
REFERENCE_SIZES = (32, 64, 128, 256, FULL_BASELINE)
"""baseline sizes the thresholds are calibrated at, each used until the next: a growing
numeric reference takes every value right after it is scored (sequential ranks), a full
one is a sample of recent values; a rate baseline grows a block at a time"""
FREEZE = 0.75
"""a growing reference stops taking values while a CUSUM of its feature is above this share
of its threshold: a change then meets the baseline from before it, not one it leaks into"""
REFERENCE_HORIZON = 4096
"""a full reference is a uniform sample of about this many recent calls (slow seasonal
change is followed, a sudden one is not)"""

WINDOW = 64
"""recent values the KS test compares with the reference; also how old a value must be
to join a full reference"""
KS_EVERY = 32
"""calls between two KS tests"""

MEAN_K = 0.5
"""mean CUSUM reference value: tuned for a shift of one standard deviation"""
VARIANCE_RATIO = 2.0
"""variance CUSUM design: the variance doubling"""

RATE_SHIFT = 0.1
"""rate CUSUM design: the rate rising by ten points"""
RATE_BLOCK = 32
"""calls a rate baseline folds in at a time (one block late)"""
RATE_MEMORY = 4096
"""calls past which a rate baseline forgets by halves"""

CATEGORY_BASELINE = 16
"""calls whose response models and fingerprints are the stream's known values"""
CONFIRM = 3
"""consecutive calls with a new model or fingerprint that make a provider change"""
CATEGORY_WINDOW = 256
"""a new value seen ``CONFIRM`` times within this many calls, but not in a row, is learnt
quietly (a rotation)"""
MAX_VALUES = 16
"""distinct values a category keeps; more in the baseline marks it volatile (never alerts)"""

TIMING_BLOCK = 3
"""timing features are watched as the median of each run of this many calls: a short
burst of slow calls (the host busy for a moment) moves few medians, a lasting slowdown
moves them all"""

GROUP_CALLS = 16
"""alarms of a stream this close to the previous one join its alert instead of raising one"""
