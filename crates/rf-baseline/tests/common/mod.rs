pub mod cic_sample;
