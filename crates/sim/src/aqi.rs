//! The US EPA Air Quality Index: a sub-index per pollutant, piecewise
//! linear between the breakpoints of EPA's table, and the AQI as the
//! largest sub-index, with its category and dominant pollutant.
//!
//! The table is the one EPA used from 2012 to May 2024 (40 CFR 58
//! Appendix G): PM2.5 "Good" ends at 12.0 ug/m3, not at the 9.0 of the
//! 2024 update. It is applied to each reading as it is, not to 24-hour or
//! 8-hour means: the simulation publishes no averages, and a consumer can
//! recompute a reading's `aqi` from its `values`.
//!
//! Concentrations are first truncated to the table's precision, as EPA
//! does (PM2.5 and CO to 0.1, the others to whole units), so every value
//! falls in a row. Above the top row the index stays at the top (500;
//! 300 for ozone, whose 8-hour table stops at 200 ppb).

/// The pollutants of an air reading, in the order ties are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pollutant {
    Pm25,
    Pm10,
    O3,
    No2,
    Co,
}

impl Pollutant {
    pub const ALL: [Pollutant; 5] = [
        Pollutant::Pm25,
        Pollutant::Pm10,
        Pollutant::O3,
        Pollutant::No2,
        Pollutant::Co,
    ];

    /// The name of its value in a reading (also the `dominant` label).
    pub fn name(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "pm25",
            Pollutant::Pm10 => "pm10",
            Pollutant::O3 => "o3",
            Pollutant::No2 => "no2",
            Pollutant::Co => "co",
        }
    }

    /// Decimals kept before the table is applied.
    fn decimals(self) -> i32 {
        match self {
            Pollutant::Pm25 | Pollutant::Co => 1,
            Pollutant::Pm10 | Pollutant::O3 | Pollutant::No2 => 0,
        }
    }

    fn breakpoints(self) -> &'static [Breakpoint] {
        match self {
            Pollutant::Pm25 => &PM25_UG_M3_24H,
            Pollutant::Pm10 => &PM10_UG_M3_24H,
            Pollutant::O3 => &O3_PPB_8H,
            Pollutant::No2 => &NO2_PPB_1H,
            Pollutant::Co => &CO_PPM_8H,
        }
    }
}

/// One row: concentrations `[low, high]` map linearly onto `[index_low, index_high]`.
struct Breakpoint {
    low: f64,
    high: f64,
    index_low: u32,
    index_high: u32,
}

const fn row(low: f64, high: f64, index_low: u32, index_high: u32) -> Breakpoint {
    Breakpoint {
        low,
        high,
        index_low,
        index_high,
    }
}

const PM25_UG_M3_24H: [Breakpoint; 7] = [
    row(0.0, 12.0, 0, 50),
    row(12.1, 35.4, 51, 100),
    row(35.5, 55.4, 101, 150),
    row(55.5, 150.4, 151, 200),
    row(150.5, 250.4, 201, 300),
    row(250.5, 350.4, 301, 400),
    row(350.5, 500.4, 401, 500),
];
const PM10_UG_M3_24H: [Breakpoint; 7] = [
    row(0.0, 54.0, 0, 50),
    row(55.0, 154.0, 51, 100),
    row(155.0, 254.0, 101, 150),
    row(255.0, 354.0, 151, 200),
    row(355.0, 424.0, 201, 300),
    row(425.0, 504.0, 301, 400),
    row(505.0, 604.0, 401, 500),
];
/// EPA's 8-hour ozone rows in ppb (the table's ppm times 1,000).
const O3_PPB_8H: [Breakpoint; 5] = [
    row(0.0, 54.0, 0, 50),
    row(55.0, 70.0, 51, 100),
    row(71.0, 85.0, 101, 150),
    row(86.0, 105.0, 151, 200),
    row(106.0, 200.0, 201, 300),
];
const NO2_PPB_1H: [Breakpoint; 7] = [
    row(0.0, 53.0, 0, 50),
    row(54.0, 100.0, 51, 100),
    row(101.0, 360.0, 101, 150),
    row(361.0, 649.0, 151, 200),
    row(650.0, 1249.0, 201, 300),
    row(1250.0, 1649.0, 301, 400),
    row(1650.0, 2049.0, 401, 500),
];
const CO_PPM_8H: [Breakpoint; 7] = [
    row(0.0, 4.4, 0, 50),
    row(4.5, 9.4, 51, 100),
    row(9.5, 12.4, 101, 150),
    row(12.5, 15.4, 151, 200),
    row(15.5, 30.4, 201, 300),
    row(30.5, 40.4, 301, 400),
    row(40.5, 50.4, 401, 500),
];

/// The sub-index of one pollutant at `concentration` (in the unit of its
/// reading value: ug/m3, ppb or ppm).
pub fn sub_index(pollutant: Pollutant, concentration: f64) -> u32 {
    let table = pollutant.breakpoints();
    let top = table.last().expect("every table has rows");
    let concentration = truncate(concentration.max(0.0), pollutant.decimals());
    if concentration > top.high {
        return top.index_high;
    }
    let row = table
        .iter()
        .find(|row| concentration <= row.high)
        .expect("truncated concentrations up to the top fall in a row");
    let slope = f64::from(row.index_high - row.index_low) / (row.high - row.low);
    (slope * (concentration - row.low) + f64::from(row.index_low)).round() as u32
}

/// Cuts (does not round) to `decimals`; the epsilon keeps 35.4, stored as
/// 35.39999..., at 35.4.
fn truncate(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale + 1e-9).floor() / scale
}

/// An air reading's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aqi {
    pub index: u32,
    /// The pollutant with the largest sub-index (the first in
    /// [`Pollutant::ALL`] order on a tie).
    pub dominant: Pollutant,
}

impl Aqi {
    /// The AQI of concentrations given in [`Pollutant::ALL`] order.
    pub fn of(concentrations: [f64; 5]) -> Aqi {
        let mut best = Aqi {
            index: 0,
            dominant: Pollutant::Pm25,
        };
        for (pollutant, concentration) in Pollutant::ALL.into_iter().zip(concentrations) {
            let index = sub_index(pollutant, concentration);
            if index > best.index {
                best = Aqi {
                    index,
                    dominant: pollutant,
                };
            }
        }
        best
    }

    pub fn category(self) -> &'static str {
        category(self.index)
    }
}

/// EPA's name for the band an index falls in.
pub fn category(index: u32) -> &'static str {
    match index {
        0..=50 => "Good",
        51..=100 => "Moderate",
        101..=150 => "Unhealthy for Sensitive Groups",
        151..=200 => "Unhealthy",
        201..=300 => "Very Unhealthy",
        _ => "Hazardous",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row ends map to the row's index ends (35.4 is 100, not 99).
    #[test]
    fn breakpoints_map_to_their_index() {
        assert_eq!(sub_index(Pollutant::Pm25, 0.0), 0);
        assert_eq!(sub_index(Pollutant::Pm25, 12.0), 50);
        assert_eq!(sub_index(Pollutant::Pm25, 12.1), 51);
        assert_eq!(sub_index(Pollutant::Pm25, 35.4), 100);
        assert_eq!(sub_index(Pollutant::Pm25, 35.5), 101);
        assert_eq!(sub_index(Pollutant::Pm25, 55.4), 150);
        assert_eq!(sub_index(Pollutant::Pm25, 55.5), 151);
        assert_eq!(sub_index(Pollutant::Pm10, 154.0), 100);
        assert_eq!(sub_index(Pollutant::O3, 70.0), 100);
        assert_eq!(sub_index(Pollutant::O3, 71.0), 101);
        assert_eq!(sub_index(Pollutant::No2, 100.0), 100);
        assert_eq!(sub_index(Pollutant::Co, 9.4), 100);
        assert_eq!(sub_index(Pollutant::Co, 50.4), 500);
    }

    /// Values inside a row interpolate linearly, rounded to the nearest
    /// integer (each worked by hand from the table).
    #[test]
    fn values_inside_a_row_interpolate() {
        // 51 + 49 / 23.3 * (20.0 - 12.1) = 67.6
        assert_eq!(sub_index(Pollutant::Pm25, 20.0), 68);
        // 101 + 49 / 99 * (200 - 155) = 123.3
        assert_eq!(sub_index(Pollutant::Pm10, 200.0), 123);
        // 151 + 49 / 19 * (90 - 86) = 161.3
        assert_eq!(sub_index(Pollutant::O3, 90.0), 161);
        assert_eq!(sub_index(Pollutant::No2, 40.0), 38);
        assert_eq!(sub_index(Pollutant::Co, 6.0), 66);
    }

    /// Values between two rows are truncated into the lower one, as EPA does.
    #[test]
    fn gaps_between_rows_truncate_down() {
        assert_eq!(sub_index(Pollutant::Pm25, 12.05), 50);
        assert_eq!(sub_index(Pollutant::Pm25, 35.49), 100);
        assert_eq!(sub_index(Pollutant::Pm10, 54.9), 50);
        assert_eq!(sub_index(Pollutant::No2, 53.7), 50);
    }

    /// Above the top row the index stays at the top; negatives are 0.
    #[test]
    fn out_of_table_values_clamp() {
        assert_eq!(sub_index(Pollutant::Pm25, 900.0), 500);
        assert_eq!(sub_index(Pollutant::Pm10, 10_000.0), 500);
        assert_eq!(sub_index(Pollutant::O3, 350.0), 300);
        assert_eq!(sub_index(Pollutant::Co, -1.0), 0);
    }

    /// The AQI is the largest sub-index; its pollutant is the dominant one,
    /// and the category follows EPA's bands.
    #[test]
    fn aqi_is_the_largest_sub_index() {
        let aqi = Aqi::of([10.0, 20.0, 75.0, 30.0, 0.4]);
        assert_eq!(aqi.index, sub_index(Pollutant::O3, 75.0));
        assert_eq!(aqi.dominant, Pollutant::O3);
        assert_eq!(aqi.category(), "Unhealthy for Sensitive Groups");
        let tie = Aqi::of([35.4, 154.0, 0.0, 0.0, 0.0]);
        assert_eq!((tie.index, tie.dominant), (100, Pollutant::Pm25));
        assert_eq!(category(0), "Good");
        assert_eq!(category(50), "Good");
        assert_eq!(category(51), "Moderate");
        assert_eq!(category(151), "Unhealthy");
        assert_eq!(category(300), "Very Unhealthy");
        assert_eq!(category(301), "Hazardous");
    }
}
