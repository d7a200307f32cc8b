//! Medium 7: webhook and syslog deliveries never reach metadata, private or loopback services unless allowed.
