//! High 2: SIGHUP reloads, SIGINT/SIGTERM stop cleanly, on a live capture and on a pcap.
