# Kernel microbenchmarks: matmul at the real 270m shapes, gemm_f32 at attention tile shapes,
# conversions, and the machine's roofline (fp32 FMA peak, memory read bandwidth).
add_executable(bench_kernels ${CMAKE_CURRENT_LIST_DIR}/bench_kernels.cc)
target_link_libraries(bench_kernels PRIVATE t5g_kernels benchmark::benchmark OpenMP::OpenMP_CXX)
