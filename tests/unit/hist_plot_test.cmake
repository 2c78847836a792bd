# hist_plot_test drives the SVG renderer of `hypergate hist --plot` (framework/gateway/hist_plot.cpp).
target_link_libraries(hist_plot_test PRIVATE hypergate_hist_plot)
