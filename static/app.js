// The status page script (see issue 5).
