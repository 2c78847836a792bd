# histogram_log_test builds compressed encodings by hand (zlib) to test the decoder's error paths.
target_link_libraries(histogram_log_test PRIVATE ZLIB::ZLIB)
