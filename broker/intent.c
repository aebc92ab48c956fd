/* placeholder */
#include "intent.h"
