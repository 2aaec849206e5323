//! Running statistics as CICFlowMeter computes them (Apache commons-math3 3.5
//! `SummaryStatistics`): the mean is the running first moment and the variance the sample
//! variance from the running second moment, so the last digits equal the Java tool's.

/// Count, sum, min, max, mean and sample variance of a stream of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningStats {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Running mean (`m1 += (x − m1) / n`).
    m1: f64,
    /// Running sum of squared deviations (`m2 += (n − 1)·d·(d / n)`).
    m2: f64,
}

impl Default for RunningStats {
    fn default() -> Self {
        Self {
            n: 0,
            sum: 0.0,
            min: f64::NAN,
            max: f64::NAN,
            m1: 0.0,
            m2: 0.0,
        }
    }
}

impl RunningStats {
    /// Adds one value (commons-math's `SecondMoment.increment` order of operations).
    ///
    /// ```
    /// let mut s = flowmeter::RunningStats::default();
    /// for v in [2.0, 4.0, 4.0, 5.0] {
    ///     s.add(v);
    /// }
    /// assert_eq!((s.count(), s.sum(), s.mean()), (4, 15.0, 3.75));
    /// assert!((s.variance() - 1.583_333_333_333_333_3).abs() < 1e-15);
    /// ```
    pub fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        }
        self.n += 1;
        let n = self.n as f64;
        let dev = v - self.m1;
        let n_dev = dev / n;
        self.m1 += n_dev;
        self.m2 += (n - 1.0) * dev * n_dev;
        self.sum += v;
        if v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Plain running sum.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest value (NaN when empty).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Largest value (NaN when empty).
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Running mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.m1
        }
    }

    /// Sample variance: NaN when empty, 0 for one value.
    pub fn variance(&self) -> f64 {
        match self.n {
            0 => f64::NAN,
            1 => 0.0,
            n => self.m2 / (n as f64 - 1.0),
        }
    }

    /// Sample standard deviation: NaN when empty, 0 for one value.
    pub fn std(&self) -> f64 {
        match self.n {
            0 => f64::NAN,
            1 => 0.0,
            _ => self.variance().sqrt(),
        }
    }
}
