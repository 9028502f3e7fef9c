# Unpacks the Gemma 3 tokenizer files (shipped xz-compressed in tests/data/tokenizer/gemma3)
# into the build tree at build time. Included by tests/tokenizer and bench/tokenizer.cmake;
# defines the target t5g_gemma3_tokenizer_data and the variable T5G_GEMMA3_TOKENIZER_DIR.
set(T5G_GEMMA3_TOKENIZER_DIR ${CMAKE_BINARY_DIR}/tokenizer_data/gemma3)
if(NOT TARGET t5g_gemma3_tokenizer_data)
  find_program(T5G_XZ xz REQUIRED)  # xz-utils, see scripts/install-deps.sh
  set(_t5g_tok_outputs)
  foreach(_f tokenizer.json tokenizer_config.json)
    set(_in ${PROJECT_SOURCE_DIR}/tests/data/tokenizer/gemma3/${_f}.xz)
    set(_out ${T5G_GEMMA3_TOKENIZER_DIR}/${_f})
    add_custom_command(
      OUTPUT ${_out}
      COMMAND ${CMAKE_COMMAND} -DXZ=${T5G_XZ} -DIN=${_in} -DOUT=${_out}
              -P ${PROJECT_SOURCE_DIR}/tests/tokenizer/unxz.cmake
      DEPENDS ${_in} ${PROJECT_SOURCE_DIR}/tests/tokenizer/unxz.cmake
      COMMENT "Unpacking ${_f}.xz"
      VERBATIM)
    list(APPEND _t5g_tok_outputs ${_out})
  endforeach()
  add_custom_target(t5g_gemma3_tokenizer_data DEPENDS ${_t5g_tok_outputs})
endif()
