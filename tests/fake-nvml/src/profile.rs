//! Time profiles (`const`, `square`, `trace`) and their exact integrals.
//!
//! A [`Profile`] maps scenario time `t` (seconds) to a value (watts for power,
//! percent for utilization). [`Profile::energy_between`] is the closed-form
//! integral of that function, so an energy counter built on it is exact.

/// A value as a function of scenario time, in one of three shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// `const:W`: the same value at every time.
    Const(f64),
    /// `square:LOW:HIGH:PERIOD`: `low` for the first half of every period,
    /// `high` for the second half.
    Square {
        /// Value while `t mod period < period / 2`.
        low: f64,
        /// Value while `t mod period >= period / 2`.
        high: f64,
        /// Period in seconds (> 0).
        period: f64,
    },
    /// `trace:T0=W0,T1=W1,...`: piecewise-linear interpolation between the
    /// points, `W0` before `T0` and the last value after the last point.
    Trace(Trace),
}

/// The points of a `trace:` profile, with the integral of each segment
/// precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// `(time, value)` points, times strictly increasing, at least one point.
    points: Vec<(f64, f64)>,
    /// `cumulative[i]` = integral from `points[0].0` to `points[i].0`.
    cumulative: Vec<f64>,
}

impl Trace {
    /// Builds a trace from `(time, value)` points.
    ///
    /// Fails if there are no points, a number is not finite, or the times are
    /// not strictly increasing.
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self, String> {
        if points.is_empty() {
            return Err("trace needs at least one T=W point".to_string());
        }
        if points.iter().any(|(t, v)| !t.is_finite() || !v.is_finite()) {
            return Err("trace points must be finite numbers".to_string());
        }
        if points.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err("trace times must be strictly increasing".to_string());
        }
        let mut cumulative = Vec::with_capacity(points.len());
        let mut sum = 0.0;
        cumulative.push(sum);
        for w in points.windows(2) {
            let ((t0, v0), (t1, v1)) = (w[0], w[1]);
            sum += (v0 + v1) * (t1 - t0) / 2.0;
            cumulative.push(sum);
        }
        Ok(Self { points, cumulative })
    }

    /// The `(time, value)` points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Index of the last point whose time is `<= t`, or `None` before the
    /// first point.
    fn segment(&self, t: f64) -> Option<usize> {
        self.points
            .partition_point(|&(ti, _)| ti <= t)
            .checked_sub(1)
    }

    fn value_at(&self, t: f64) -> f64 {
        let Some(i) = self.segment(t) else {
            return self.points[0].1;
        };
        let (t0, v0) = self.points[i];
        match self.points.get(i + 1) {
            Some(&(t1, v1)) => v0 + (v1 - v0) * (t - t0) / (t1 - t0),
            None => v0,
        }
    }

    /// Integral from the first point's time to `t` (negative if `t` is
    /// before it).
    fn integral_from_start(&self, t: f64) -> f64 {
        let Some(i) = self.segment(t) else {
            let (t0, v0) = self.points[0];
            return v0 * (t - t0);
        };
        let (ti, vi) = self.points[i];
        // The interpolated value at `t` closes the partial trapezoid; after
        // the last point it is the (constant) last value.
        let v = self.value_at(t);
        self.cumulative[i] + (vi + v) * (t - ti) / 2.0
    }
}

impl Profile {
    /// Parses `const:W`, `square:LOW:HIGH:PERIOD` or `trace:T0=W0,T1=W1,...`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (kind, args) = s
            .split_once(':')
            .ok_or_else(|| format!("profile `{s}` must look like const:W, square:LOW:HIGH:PERIOD or trace:T0=W0,T1=W1,..."))?;
        match kind.trim() {
            "const" => Ok(Self::Const(number(args)?)),
            "square" => {
                let parts: Vec<&str> = args.split(':').collect();
                let [low, high, period] = parts[..] else {
                    return Err(format!(
                        "square profile needs LOW:HIGH:PERIOD, got `{args}`"
                    ));
                };
                let (low, high, period) = (number(low)?, number(high)?, number(period)?);
                if period <= 0.0 {
                    return Err(format!("square period must be > 0, got {period}"));
                }
                Ok(Self::Square { low, high, period })
            }
            "trace" => {
                let points = args
                    .split(',')
                    .map(|p| {
                        let (t, v) = p
                            .split_once('=')
                            .ok_or_else(|| format!("trace point `{}` must be T=W", p.trim()))?;
                        Ok((number(t)?, number(v)?))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Self::Trace(Trace::new(points)?))
            }
            other => Err(format!(
                "unknown profile kind `{other}` (expected const, square or trace)"
            )),
        }
    }

    /// The profile's value at time `t` (seconds).
    pub fn value_at(&self, t: f64) -> f64 {
        match self {
            Self::Const(w) => *w,
            Self::Square { low, high, period } => {
                if t.rem_euclid(*period) < period / 2.0 {
                    *low
                } else {
                    *high
                }
            }
            Self::Trace(trace) => trace.value_at(t),
        }
    }

    /// Exact integral of the profile over `[t0, t1]` (joules for a power
    /// profile in watts). Negative if `t1 < t0`.
    pub fn energy_between(&self, t0: f64, t1: f64) -> f64 {
        self.antiderivative(t1) - self.antiderivative(t0)
    }

    /// The smallest value the profile ever takes.
    pub fn min_value(&self) -> f64 {
        match self {
            Self::Const(w) => *w,
            Self::Square { low, high, .. } => low.min(*high),
            Self::Trace(trace) => trace
                .points()
                .iter()
                .map(|&(_, v)| v)
                .fold(f64::INFINITY, f64::min),
        }
    }

    /// Integral from 0 to `t` (negative for `t < 0`), in closed form.
    fn antiderivative(&self, t: f64) -> f64 {
        match self {
            Self::Const(w) => w * t,
            Self::Square { low, high, period } => {
                let half = period / 2.0;
                let full_periods = (t / period).floor();
                let r = t - full_periods * period;
                // Guard against `r` landing a rounding error outside [0, period].
                let r = r.clamp(0.0, *period);
                let partial = low * r.min(half) + high * (r - half).max(0.0);
                full_periods * (low + high) * half + partial
            }
            Self::Trace(trace) => trace.integral_from_start(t) - trace.integral_from_start(0.0),
        }
    }
}

fn number(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("`{s}` is not a finite number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: usize = 200_000;

    /// Independent reference: midpoint rule with fine steps, using only
    /// `value_at`. Each discontinuity costs at most `jump * step` of error.
    fn numeric(p: &Profile, t0: f64, t1: f64) -> f64 {
        let n = STEPS;
        let h = (t1 - t0) / n as f64;
        (0..n)
            .map(|i| p.value_at(t0 + (i as f64 + 0.5) * h) * h)
            .sum()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn const_profile() {
        let p = Profile::parse("const:250").expect("parse");
        assert_eq!(p.value_at(-3.0), 250.0);
        assert_eq!(p.value_at(1e6), 250.0);
        assert!(close(p.energy_between(0.0, 10.0), 2500.0, 1e-9));
        assert!(close(p.energy_between(2.5, 4.0), 375.0, 1e-9));
        assert!(close(
            p.energy_between(1.0, 7.3),
            numeric(&p, 1.0, 7.3),
            1e-6
        ));
    }

    #[test]
    fn square_profile_values() {
        let p = Profile::parse("square:100:400:2").expect("parse");
        assert_eq!(p.value_at(0.0), 100.0);
        assert_eq!(p.value_at(0.999), 100.0);
        assert_eq!(p.value_at(1.0), 400.0);
        assert_eq!(p.value_at(1.999), 400.0);
        assert_eq!(p.value_at(2.0), 100.0);
        assert_eq!(p.value_at(-0.5), 400.0);
    }

    #[test]
    fn square_profile_energy_by_hand() {
        let p = Profile::parse("square:100:400:2").expect("parse");
        // 5 full periods of (100 + 400) * 1 s.
        assert!(close(p.energy_between(0.0, 10.0), 2500.0, 1e-9));
        // [0.5, 1.5]: 0.5 s at 100 W + 0.5 s at 400 W.
        assert!(close(p.energy_between(0.5, 1.5), 250.0, 1e-9));
        // [0, 3.25]: one full period (500) + 1 s at 100 + 0.25 s at 400.
        assert!(close(p.energy_between(0.0, 3.25), 700.0, 1e-9));
        assert!(close(p.energy_between(3.25, 0.0), -700.0, 1e-9));
    }

    #[test]
    fn square_profile_energy_numeric() {
        let (low, high, period) = (37.5, 812.0, 3.7);
        let p = Profile::parse(&format!("square:{low}:{high}:{period}")).expect("parse");
        for (a, b) in [(0.0, 10.0), (0.3, 17.9), (5.55, 5.56), (100.0, 161.3)] {
            let exact = p.energy_between(a, b);
            let approx = numeric(&p, a, b);
            // The midpoint rule misses at most one step's worth of each jump.
            let jumps = (2.0 * (b - a) / period).ceil() + 1.0;
            let tol = jumps * (high - low) * (b - a) / STEPS as f64 + 1e-9;
            assert!(close(exact, approx, tol), "[{a},{b}] {exact} vs {approx}");
        }
    }

    #[test]
    fn trace_profile_values() {
        let p = Profile::parse("trace:0=100,10=300,20=300,30=0").expect("parse");
        assert_eq!(p.value_at(-5.0), 100.0);
        assert_eq!(p.value_at(0.0), 100.0);
        assert!(close(p.value_at(5.0), 200.0, 1e-12));
        assert_eq!(p.value_at(15.0), 300.0);
        assert!(close(p.value_at(27.5), 75.0, 1e-12));
        assert_eq!(p.value_at(30.0), 0.0);
        assert_eq!(p.value_at(99.0), 0.0);
    }

    #[test]
    fn trace_profile_energy_by_hand() {
        let p = Profile::parse("trace:0=100,10=300").expect("parse");
        assert!(close(p.energy_between(0.0, 10.0), 2000.0, 1e-9));
        // Trapezoid [0,5]: (100 + 200) / 2 * 5.
        assert!(close(p.energy_between(0.0, 5.0), 750.0, 1e-9));
        // Constant tail after the last point.
        assert!(close(p.energy_between(10.0, 12.0), 600.0, 1e-9));

        // Trace starting after 0: W0 before T0.
        let p = Profile::parse("trace:5=50,15=150").expect("parse");
        // [0,5] at 50 W = 250, [5,15] trapezoid = 1000, [15,20] at 150 = 750.
        assert!(close(p.energy_between(0.0, 20.0), 2000.0, 1e-9));
        assert!(close(p.energy_between(2.0, 7.0), 150.0 + 2.0 * 60.0, 1e-9));
    }

    #[test]
    fn trace_profile_energy_numeric() {
        let p = Profile::parse("trace: 1=80, 2.5=640, 4=120, 9=700.25, 9.5=0").expect("parse");
        for (a, b) in [(0.0, 12.0), (1.7, 3.3), (2.5, 9.2), (9.4, 20.0)] {
            let exact = p.energy_between(a, b);
            let approx = numeric(&p, a, b);
            assert!(close(exact, approx, 1e-4), "[{a},{b}] {exact} vs {approx}");
        }
    }

    #[test]
    fn single_point_trace_is_constant() {
        let p = Profile::parse("trace:3=42").expect("parse");
        assert_eq!(p.value_at(0.0), 42.0);
        assert_eq!(p.value_at(10.0), 42.0);
        assert!(close(p.energy_between(0.0, 10.0), 420.0, 1e-9));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "100",
            "const:",
            "const:abc",
            "const:inf",
            "square:1:2",
            "square:1:2:0",
            "square:1:2:-3",
            "trace:",
            "trace:1=2,1=3",
            "trace:2=1,1=3",
            "trace:1",
            "sine:1:2",
        ] {
            assert!(Profile::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn min_value() {
        assert_eq!(Profile::parse("const:-1").expect("parse").min_value(), -1.0);
        assert_eq!(
            Profile::parse("square:5:3:1").expect("parse").min_value(),
            3.0
        );
        assert_eq!(
            Profile::parse("trace:0=5,1=-2,2=9")
                .expect("parse")
                .min_value(),
            -2.0
        );
    }
}
