//! The `citystream` binary.

fn main() {
    println!("citystream: under construction");
}
