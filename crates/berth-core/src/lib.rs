pub use berth_api;
