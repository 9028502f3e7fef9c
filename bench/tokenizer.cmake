# bench_tokenizer: load time, encode / decode throughput of the Gemma 3 tokenizer.
# Uses the tokenizer files unpacked from tests/data (see tests/tokenizer/gemma3_data.cmake).
include(${PROJECT_SOURCE_DIR}/tests/tokenizer/gemma3_data.cmake)
add_executable(bench_tokenizer ${CMAKE_CURRENT_SOURCE_DIR}/bench_tokenizer.cc)
target_link_libraries(bench_tokenizer PRIVATE t5g_tokenizer benchmark::benchmark)
target_compile_definitions(bench_tokenizer PRIVATE T5G_GEMMA3_TOKENIZER_DIR="${T5G_GEMMA3_TOKENIZER_DIR}"
                                                   T5G_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data")
add_dependencies(bench_tokenizer t5g_gemma3_tokenizer_data)
