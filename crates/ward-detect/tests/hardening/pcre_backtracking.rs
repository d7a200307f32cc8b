//! Medium 8: pcre match and recursion limits; hits are counted and the sensor keeps going.
