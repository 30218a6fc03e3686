package snapshot

// CollectLessOften is collectLessOften, for the tests.
var CollectLessOften = collectLessOften
