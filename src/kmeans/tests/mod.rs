//! Tests of the whole fit (the parts' own tests sit beside them).

mod fit;
