//! [`Tumbling`]: count, mean, min and max of one metric over tumbling
//! windows of event time (a reading's `ts_ms`). Windows start at
//! multiples of the width. A window closes when a value of a later window
//! arrives (there is no clock: a station that falls silent keeps its last
//! window open); a value of an earlier window than the open one is late
//! and refused (a station's time only grows). Pure.

/// What a window saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub start_ms: i64,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Sum of squared deviations from the mean (Welford), for the spread.
    squares: f64,
}

impl WindowStats {
    fn first(start_ms: i64, value: f64) -> WindowStats {
        WindowStats {
            start_ms,
            count: 1,
            mean: value,
            min: value,
            max: value,
            squares: 0.0,
        }
    }

    fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.squares += delta * (value - self.mean);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Sample standard deviation of the window's values (0 for one value).
    pub fn std_dev(&self) -> f64 {
        match self.count {
            0 | 1 => 0.0,
            count => (self.squares / (count - 1) as f64).sqrt(),
        }
    }
}

/// What adding a value did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Added {
    /// It joined the open window (or opened the first one).
    Joined,
    /// It opened a new window, closing this one.
    Closed(WindowStats),
    /// It belongs to a window before the open one: dropped.
    Late,
}

#[derive(Debug, Clone)]
pub struct Tumbling {
    width_ms: i64,
    open: Option<WindowStats>,
}

impl Tumbling {
    pub fn new(width_ms: i64) -> Tumbling {
        assert!(width_ms > 0, "a window has a width");
        Tumbling {
            width_ms,
            open: None,
        }
    }

    /// The start of the window holding `ts_ms`.
    pub fn start_of(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.width_ms) * self.width_ms
    }

    pub fn add(&mut self, ts_ms: i64, value: f64) -> Added {
        let start = self.start_of(ts_ms);
        let Some(open) = &mut self.open else {
            self.open = Some(WindowStats::first(start, value));
            return Added::Joined;
        };
        if start < open.start_ms {
            return Added::Late;
        }
        if start == open.start_ms {
            open.add(value);
            return Added::Joined;
        }
        let closed = std::mem::replace(open, WindowStats::first(start, value));
        Added::Closed(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of 60 s: values join until one of a later minute closes
    /// the window with its count, mean, min and max; late values are dropped.
    #[test]
    fn windows_close_when_a_later_value_arrives() {
        let mut window = Tumbling::new(60_000);
        assert_eq!(window.add(120_000, 4.0), Added::Joined);
        assert_eq!(window.add(150_000, 8.0), Added::Joined);
        assert_eq!(window.add(179_999, 6.0), Added::Joined);
        let Added::Closed(closed) = window.add(180_000, 1.0) else {
            panic!("the minute ended")
        };
        assert_eq!(closed.start_ms, 120_000);
        assert_eq!(
            (closed.count, closed.mean, closed.min, closed.max),
            (3, 6.0, 4.0, 8.0)
        );
        assert!((closed.std_dev() - 2.0).abs() < 1e-12);
        assert_eq!(window.add(170_000, 9.0), Added::Late);
        // A gap of several minutes closes the open window all the same.
        let Added::Closed(closed) = window.add(600_000, 2.0) else {
            panic!("a later minute")
        };
        assert_eq!(
            (closed.start_ms, closed.count, closed.mean),
            (180_000, 1, 1.0)
        );
    }

    /// Window starts are multiples of the width, also before the epoch.
    #[test]
    fn windows_start_at_multiples_of_the_width() {
        let window = Tumbling::new(60_000);
        assert_eq!(window.start_of(1_796_580_563_199), 1_796_580_540_000);
        assert_eq!(window.start_of(-1), -60_000);
    }
}
