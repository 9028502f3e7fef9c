# Image microbenchmarks: decode (JPEG/PNG from a synthetic photo-sized image), resize to 896 with
# both filters, full preprocess, pan-and-scan. Target: bench_image.
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)
add_executable(bench_image ${CMAKE_CURRENT_LIST_DIR}/bench_image.cc)
target_link_libraries(bench_image PRIVATE t5g_image JPEG::JPEG PNG::PNG benchmark::benchmark)
