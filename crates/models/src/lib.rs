pub mod checkpoint;
pub mod data;
pub mod nn;
pub mod optim;
pub mod report;
pub mod train;
pub mod zoo;
