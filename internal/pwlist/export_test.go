package pwlist

// EmbeddedData is the embedded file, for tests that parse it afresh.
var EmbeddedData = commonGz
