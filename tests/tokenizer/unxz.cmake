# cmake -DXZ=<xz> -DIN=<file.xz> -DOUT=<file> -P unxz.cmake
# Decompresses to a temporary name first so an interrupted build never leaves a truncated OUT.
get_filename_component(_dir ${OUT} DIRECTORY)
file(MAKE_DIRECTORY ${_dir})
execute_process(COMMAND ${XZ} -dc ${IN} OUTPUT_FILE ${OUT}.part RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  file(REMOVE ${OUT}.part)
  message(FATAL_ERROR "xz -dc ${IN} failed (${_rc})")
endif()
file(RENAME ${OUT}.part ${OUT})
